"""SSH deploy keys of apps and the pinned host keys of the servers they fetch from.

Everything lives under `<data dir>/ssh/`: `keys/<app>` (the private key, 0600) and
`keys/<app>.pub`, and `known_hosts`, the only host keys homeport's ssh trusts. A host is
pinned by `homeport credentials trust-host HOST`, never by a fetch: ssh runs with
StrictHostKeyChecking=yes, so an unknown host or a changed key stops the fetch.
The system's ssh and ssh-keygen do the cryptography; this module only runs them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from homeport.errors import Conflict, InvalidInput, NotFound, StageError
from homeport.names import check_app_name

# Host names and user names go to ssh's command line: only plain DNS names and IPv4
# addresses, never anything starting with '-', which ssh would read as an option.
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
# The repository path, which git quotes and hands to the server's git-upload-pack.
_PATH = re.compile(r"[A-Za-z0-9._~/+-]{1,500}")
# How long a key scan or an ssh connection may take before the server counts as unreachable.
CONNECT_SECONDS = 15
KEY_TYPES = "ed25519,ecdsa,rsa"


class SshError(InvalidInput):
    """An SSH URL, host or key homeport cannot use."""


class HostKeyChanged(Conflict):
    """The host's key differs from the pinned one."""


@dataclass(frozen=True)
class Endpoint:
    """Where an SSH clone URL points."""

    user: str
    host: str
    port: int
    path: str

    @property
    def known_name(self) -> str:
        return known_name(self.host, self.port)

    @property
    def url(self) -> str:
        """The URL handed to git, in the form it was given (a scp-like path is relative)."""
        if not self.path.startswith("/"):
            return f"{self.user}@{self.host}:{self.path}"
        return f"ssh://{self.user}@{self.host}:{self.port}{self.path}"


def ssh_dir(data_dir: Path) -> Path:
    return data_dir / "ssh"


def known_hosts(data_dir: Path) -> Path:
    return ssh_dir(data_dir) / "known_hosts"


def key_path(data_dir: Path, app: str) -> Path:
    return ssh_dir(data_dir) / "keys" / check_app_name(app)


def has_key(data_dir: Path, app: str) -> bool:
    return key_path(data_dir, app).is_file()


def known_name(host: str, port: int) -> str:
    """The host as known_hosts names it: `host`, or `[host]:port` off port 22."""
    return host.lower() if port == 22 else f"[{host.lower()}]:{port}"


def parse_host(text: object) -> tuple[str, int]:
    """'github.com' or 'host:2222' -> (host, port); SshError otherwise."""
    if not isinstance(text, str):
        raise SshError('send {"host": "HOST"} or {"host": "HOST:PORT"}, e.g. "github.com"')
    host, sep, port_text = text.strip().partition(":")
    port = 22
    if sep:
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SshError(f"host {text[:80]!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    if not _HOST.fullmatch(host):
        raise SshError(
            f"host {text[:80]!r} is not a host name or IPv4 address (optionally :PORT), "
            "e.g. github.com or gitea.lan:2222"
        )
    return host.lower(), port


def parse_ssh_url(url: object) -> Endpoint:
    """An ssh:// or scp-like (git@host:owner/repo.git) clone URL; SshError otherwise."""
    refused = (
        "is not an SSH clone URL homeport can use: ssh://user@host[:port]/path or "
        "user@host:path, with a plain host name"
    )
    if not isinstance(url, str) or len(url) > 600:
        raise SshError(f"the ssh_url {refused}")
    shown = repr(url[:120])
    if url.startswith("ssh://"):
        try:
            parts = urlsplit(url)
            port = parts.port or 22
        except ValueError:
            raise SshError(f"ssh_url {shown} {refused}") from None
        user, host, path = parts.username or "git", parts.hostname or "", parts.path
        if parts.password is not None or parts.query or parts.fragment:
            raise SshError(f"ssh_url {shown} {refused}")
    else:
        userhost, sep, path = url.partition(":")
        user, at, host = userhost.rpartition("@")
        if not sep or not at or "/" in userhost:
            raise SshError(f"ssh_url {shown} {refused}")
        port = 22
    if (
        not _USER.fullmatch(user)
        or not _HOST.fullmatch(host)
        or not _PATH.fullmatch(path)
        or path.startswith("-")
        or any(part == ".." for part in path.split("/"))
    ):
        raise SshError(f"ssh_url {shown} {refused}")
    return Endpoint(user=user, host=host.lower(), port=port, path=path)


# -- deploy keys ---------------------------------------------------------------------------


def _keygen(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["ssh-keygen", *args],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise StageError(
            "ssh-keygen is not installed; homeport makes deploy keys and fetches over SSH with "
            "OpenSSH: install it (e.g. `apt install openssh-client`) and try again"
        ) from None


def make_key(data_dir: Path, app: str, *, replace: bool = False) -> tuple[str, bool]:
    """The app's public key, made now (ed25519) unless it has one; and whether it was made."""
    path = key_path(data_dir, app)
    if path.is_file() and not replace:
        return public_key(data_dir, app), False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Made in a directory of its own and renamed into place, so two requests at once never
    # leave a private key that does not match its public half.
    tmp = Path(tempfile.mkdtemp(prefix=".key-", dir=path.parent))
    try:
        made = _keygen(
            "-q", "-t", "ed25519", "-N", "", "-C", f"homeport-{app}", "-f", str(tmp / "k")
        )
        if made.returncode != 0:
            raise StageError(f"ssh-keygen could not make a key: {made.stderr.strip()[:200]}")
        os.chmod(tmp / "k", 0o600)
        os.replace(tmp / "k.pub", path.with_suffix(".pub"))
        os.replace(tmp / "k", path)
    finally:
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()
    return public_key(data_dir, app), True


def public_key(data_dir: Path, app: str) -> str:
    try:
        return key_path(data_dir, app).with_suffix(".pub").read_text().strip()
    except FileNotFoundError:
        raise NotFound(
            f"app {app!r} has no deploy key; make one with homeport credentials ssh-key {app}"
        ) from None


def remove_key(data_dir: Path, app: str) -> None:
    path = key_path(data_dir, app)
    if not path.is_file():
        raise NotFound(f"app {app!r} has no deploy key")
    path.unlink()
    path.with_suffix(".pub").unlink(missing_ok=True)


def list_keys(data_dir: Path) -> list[str]:
    folder = ssh_dir(data_dir) / "keys"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and "." not in p.name)


# -- host keys -----------------------------------------------------------------------------


def fingerprint(key_base64: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    try:
        blob = base64.b64decode(key_base64, validate=True)
    except (binascii.Error, ValueError):
        return "SHA256:(unreadable key)"
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def scan(host: str, port: int) -> list[tuple[str, str]]:
    """The host's public keys as (type, base64 blob), asked of the host itself."""
    try:
        found = subprocess.run(
            ["ssh-keyscan", "-T", str(CONNECT_SECONDS), "-p", str(port), "-t", KEY_TYPES, host],
            capture_output=True,
            text=True,
            timeout=CONNECT_SECONDS * 4,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise StageError(
            "ssh-keyscan is not installed; install OpenSSH's client (e.g. `apt install "
            "openssh-client`) and try again"
        ) from None
    except subprocess.TimeoutExpired:
        found = subprocess.CompletedProcess([], 1, "", "")
    keys = []
    for line in found.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not line.startswith("#"):
            keys.append((fields[1], fields[2]))
    return keys


def pinned(data_dir: Path, host: str, port: int) -> list[tuple[str, str]]:
    """The keys pinned for the host, as (type, base64 blob)."""
    name = known_name(host, port)
    try:
        lines = known_hosts(data_dir).read_text().splitlines()
    except FileNotFoundError:
        return []
    keys = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and name in fields[0].split(","):
            keys.append((fields[1], fields[2]))
    return keys


def pinned_hosts(data_dir: Path) -> list[dict[str, str]]:
    """Every pinned host key: {"host", "type", "fingerprint"}."""
    try:
        lines = known_hosts(data_dir).read_text().splitlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3:
            host = fields[0]
            if host.startswith("["):
                host = host[1:].replace("]", "")
            found.append({"host": host, "type": fields[1], "fingerprint": fingerprint(fields[2])})
    return found


def described(keys: list[tuple[str, str]]) -> str:
    return ", ".join(f"{fingerprint(blob)} ({kind})" for kind, blob in keys)


def trust(
    data_dir: Path, host_text: object, *, expect: str | None = None, replace: bool = False
) -> list[dict[str, str]]:
    """Ask the host for its keys and pin them; their types and fingerprints.

    `expect`, a fingerprint the user checked elsewhere, must be among the keys offered; a
    host already pinned with other keys is refused unless `replace`.
    """
    host, port = parse_host(host_text)
    offered = scan(host, port)
    shown = known_name(host, port).replace("[", "").replace("]", "")
    if not offered:
        raise SshError(
            f"could not read the SSH host keys of {shown} (no answer on port {port}); check the "
            "host name and port and that the server is up"
        )
    if expect is not None and expect not in {fingerprint(blob) for _, blob in offered}:
        raise HostKeyChanged(
            f"{shown} offered {described(offered)}, not {expect}; do not trust it until you "
            "know why"
        )
    current = pinned(data_dir, host, port)
    if current and set(current) != set(offered) and not replace:
        if set(offered) & set(current):
            # Same server with a key type added: keep what was pinned, add nothing.
            offered = current
        else:
            raise HostKeyChanged(
                f"the SSH host key of {shown} CHANGED: pinned {described(current)}, now offered "
                f"{described(offered)}. If the server's key really changed, trust the new one "
                f"with homeport credentials trust-host {shown} --replace"
            )
    _write_pins(data_dir, known_name(host, port), offered)
    return [{"host": shown, "type": kind, "fingerprint": fingerprint(b)} for kind, b in offered]


def _write_pins(data_dir: Path, name: str, keys: list[tuple[str, str]]) -> None:
    path = known_hosts(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    kept = [line for line in lines if line.split()[:1] != [name]]
    kept += [f"{name} {kind} {blob}" for kind, blob in keys]
    fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=path.parent)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(kept) + "\n")
    os.replace(tmp, path)


def ssh_command(data_dir: Path, app: str) -> str:
    """GIT_SSH_COMMAND for fetching with the app's key, trusting pinned host keys only.

    -F /dev/null: the worker user's ~/.ssh/config (proxies, other keys) plays no part.
    """
    options = [
        "-F",
        "/dev/null",
        "-i",
        str(key_path(data_dir, app)),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts(data_dir)}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "UpdateHostKeys=no",
        "-o",
        "CheckHostIP=no",
        "-o",
        f"ConnectTimeout={CONNECT_SECONDS}",
    ]
    return "ssh " + " ".join(shlex.quote(o) for o in options)
