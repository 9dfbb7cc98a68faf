"""HTTPS credentials for fetching private repositories, kept in the data dir.

A credential is a URL prefix (`https://github.com/me/`), a user name and a password (a
token, usually). The longest prefix that matches a clone URL is used for its fetch. They
live in `<data dir>/credentials.json`, 0600 like the rest of the data dir; the password
never leaves it except on its way to git's credential protocol (see fetch.py), and the
API and CLI show prefixes and user names only.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

from homeport.errors import InvalidInput, NotFound

FILE_NAME = "credentials.json"
# Bounds on what a client may store: git's credential protocol is line-based, so a newline
# or NUL in a value would let it inject fields; the lengths keep the file small.
MAX_PREFIX = 500
MAX_USERNAME = 256
MAX_PASSWORD = 4096
MAX_CREDENTIALS = 200


class CredentialError(InvalidInput):
    """A credential homeport cannot store or use."""


@dataclass(frozen=True)
class Credential:
    prefix: str
    username: str
    password: str

    def public(self) -> dict[str, str]:
        """What the API and CLI may show: never the password."""
        return {"prefix": self.prefix, "username": self.username}


def _path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def normalize_prefix(prefix: str) -> str:
    """The prefix with scheme and host in lower case; CredentialError unless http(s)."""
    if not isinstance(prefix, str) or not prefix or len(prefix) > MAX_PREFIX:
        raise CredentialError(
            f"a credential prefix is an http(s) URL of at most {MAX_PREFIX} characters, "
            "e.g. https://github.com/me/"
        )
    try:
        parts = urlsplit(prefix)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise CredentialError(f"prefix {prefix[:80]!r} is not a URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise CredentialError(
            f"prefix {prefix[:80]!r} is not an http(s) URL with a host, e.g. https://github.com/me/"
        )
    if "@" in parts.netloc:
        raise CredentialError(
            "the prefix must not hold a user name or password; give them with --username and "
            "--password-stdin"
        )
    if parts.query or parts.fragment or _has_control(prefix):
        raise CredentialError(f"prefix {prefix[:80]!r} must be a plain URL (no query, no #)")
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()))


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _check_value(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or _has_control(value):
        raise CredentialError(
            f"the {name} must be 1 to {limit} characters without newlines or control characters"
        )
    return value


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(parts: SplitResult) -> tuple[str, str, int] | None:
    """Scheme, host and port (the scheme's default when none is given); None if unreadable."""
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname.lower(), port


def matches(prefix: str, url: str) -> bool:
    """Whether `prefix` covers `url`: the same scheme, host and port exactly, then the path
    at a `/` boundary (.../me covers .../me/blog.git, not .../meow) or the repository's
    `.git` (.../me/blog covers .../me/blog.git).

    A text prefix match would hand the credential for https://gitea.lan to
    https://gitea.lan.evil.example, a host whoever writes a webhook payload can name.
    """
    try:
        want, got = urlsplit(prefix), urlsplit(url)
    except ValueError:
        return False
    origin = _origin(want)
    if origin is None or origin != _origin(got):
        return False
    base, path = want.path.rstrip("/"), got.path
    if not base:
        return True
    return path == base or path.startswith(base + "/") or path == base + ".git"


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """One writer at a time across the receiver's threads and processes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / f".{FILE_NAME}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load(data_dir: Path) -> list[Credential]:
    """Every stored credential, longest prefix first."""
    try:
        raw = json.loads(_path(data_dir).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise CredentialError(
            f"cannot read {_path(data_dir)} ({type(exc).__name__}); fix or remove it and set "
            "the credentials again"
        ) from None
    found = [
        Credential(prefix, str(entry.get("username", "")), str(entry.get("password", "")))
        for prefix, entry in (raw.items() if isinstance(raw, dict) else [])
        if isinstance(entry, dict)
    ]
    return sorted(found, key=lambda c: len(c.prefix), reverse=True)


def _save(data_dir: Path, found: list[Credential]) -> None:
    data = {c.prefix: {"username": c.username, "password": c.password} for c in found}
    # Written whole beside the file and renamed over it, so a reader never sees half of it;
    # mkstemp makes it 0600 whatever the umask.
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=data_dir)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, _path(data_dir))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def put(data_dir: Path, prefix: object, username: object, password: object) -> Credential:
    """Store (or replace) the credential for `prefix`."""
    cred = Credential(
        normalize_prefix(prefix),  # type: ignore[arg-type]
        _check_value("username", username, MAX_USERNAME),
        _check_value("password", password, MAX_PASSWORD),
    )
    with _locked(data_dir):
        found = [c for c in load(data_dir) if c.prefix != cred.prefix]
        if len(found) >= MAX_CREDENTIALS:
            raise CredentialError(
                f"homeport keeps at most {MAX_CREDENTIALS} credentials; remove some first "
                "(homeport credentials rm PREFIX)"
            )
        _save(data_dir, [*found, cred])
    return cred


def remove(data_dir: Path, prefix: object) -> None:
    """Forget the credential for `prefix`; NotFound if there is none."""
    key = normalize_prefix(prefix)  # type: ignore[arg-type]
    with _locked(data_dir):
        found = load(data_dir)
        kept = [c for c in found if c.prefix != key]
        if len(kept) == len(found):
            raise NotFound(
                f"no credentials for {key}; homeport credentials list shows the prefixes"
            )
        _save(data_dir, kept)


def for_url(data_dir: Path, url: str) -> Credential | None:
    """The credential with the longest prefix that covers `url` (user info ignored)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    netloc = parts.netloc.rpartition("@")[2].lower()
    plain = urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=netloc))
    for cred in load(data_dir):
        if matches(cred.prefix, plain):
            return cred
    return None


def secrets(data_dir: Path) -> list[str]:
    """The stored passwords, for the output masker."""
    try:
        return [c.password for c in load(data_dir)]
    except CredentialError:
        return []
