"""Fetching a webhook's commit into an app's repository with the git command line.

git does what a webhook fetch needs and dulwich's client does not do alike over HTTPS and
SSH: fetch one commit by id with depth 1 (protocol v2), so the first webhook of a large
repository downloads one tree instead of its history. Where the server will not serve a
commit by id, the tip of the pushed branch is fetched shallow instead, and where it cannot
fetch shallow at all, the branch whole; each step says so in the job's output.

Secrets never reach a command line or a URL that is shown: an HTTPS password goes to git
through a credential helper that reads it from the environment of that one git process
(readable by homeport's own user only), scoped to the clone URL's host so a redirect
elsewhere is not answered; an SSH fetch uses the app's deploy key and the pinned host keys
(sshkeys.py). git runs without the user's or the system's git config.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from homeport.errors import StageError
from homeport.git import credentials, gitcli, sources, sshkeys
from homeport.settings import show_size

# The credential helper git runs (through sh) for the clone URL's host: it prints the
# user name and password from its environment for "get" and ignores "store" and "erase".
_HELPER = (
    '!f() { test "$1" = get || return 0; printf "username=%s\\npassword=%s\\n" '
    '"$HOMEPORT_FETCH_USERNAME" "$HOMEPORT_FETCH_PASSWORD"; }; f'
)
# Passed through to git from homeport's environment: what finds programs, a home for ssh,
# and a proxy where the network needs one. Nothing else (no HOMEPORT_* secret) reaches git.
_PROXIES = ("http_proxy", "https_proxy", "no_proxy")
_PASSED = ("PATH", "HOME", "TMPDIR", *_PROXIES, *(name.upper() for name in _PROXIES))

_OPTIONS = (
    # Only these transports, whatever a URL says (no ext::, no fd::).
    "protocol.allow=never",
    "protocol.http.allow=always",
    "protocol.https.allow=always",
    "protocol.ssh.allow=always",
    "protocol.file.allow=always",
    "protocol.version=2",
    # Keep what arrives as one pack (dulwich reads it as well as loose objects, in far
    # fewer files), and never start a gc in a job.
    "transfer.unpackLimit=1",
    "fetch.unpackLimit=1",
    "gc.auto=0",
    "maintenance.auto=false",
    "credential.helper=",
)


class FetchError(StageError):
    """The commit could not be fetched; the message says why and what to do."""


class NotServedById(Exception):
    """The server does not hand out a commit by its id (or not shallow)."""


@dataclass
class _Source:
    """One fetch's target as git is given it, and what it may say about it."""

    data_dir: Path
    target: str
    shown: str
    host: str
    env: dict[str, str]
    options: list[str] = field(default_factory=list)
    credential: credentials.Credential | None = None
    ssh: sshkeys.Endpoint | None = None
    app: str = ""
    secrets: list[str] = field(default_factory=list)


def _base_env() -> dict[str, str]:
    # A pass-through of a few process variables, not settings (those come from Settings).
    env = {name: os.environ[name] for name in _PASSED if name in os.environ}
    env.update(
        LC_ALL="C",
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_ASKPASS="",
        SSH_ASKPASS="",
    )
    return env


def _https_source(data_dir: Path, url: str, allow_file: bool) -> _Source:
    sources.check_clone_url(url, allow_file)
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    plain = urlunsplit(parts._replace(netloc=netloc))
    env = _base_env()
    source = _Source(data_dir=data_dir, target=plain, shown=plain, host=netloc.lower(), env=env)
    if parts.scheme.lower() == "file":
        return source
    if parts.password:
        # Credentials in the clone URL itself: used as given, never passed on in it.
        user, password = parts.username or "git", parts.password
        source.secrets.append(password)
    else:
        source.credential = credentials.for_url(data_dir, plain)
        if source.credential is None:
            return source
        user, password = source.credential.username, source.credential.password
    env["HOMEPORT_FETCH_USERNAME"] = user
    env["HOMEPORT_FETCH_PASSWORD"] = password
    source.secrets.append(password)
    scope = urlunsplit((parts.scheme.lower(), netloc.lower(), "", "", ""))
    source.options = ["-c", f"credential.{scope}.helper={_HELPER}"]
    return source


def _ssh_source(data_dir: Path, app: str, ssh_url: str) -> _Source:
    endpoint = sshkeys.parse_ssh_url(ssh_url)
    env = _base_env()
    env.update(GIT_SSH_COMMAND=sshkeys.ssh_command(data_dir, app), GIT_SSH_VARIANT="ssh")
    return _Source(
        data_dir=data_dir,
        target=endpoint.url,
        shown=endpoint.url,
        host=endpoint.known_name.replace("[", "").replace("]", ""),
        env=env,
        ssh=endpoint,
        app=app,
    )


def source_for(data_dir: Path, app: str, url: str, ssh_url: str, allow_file: bool) -> _Source:
    """Over SSH with the app's deploy key when it has one and the payload names an SSH URL."""
    if ssh_url and sshkeys.has_key(data_dir, app):
        return _ssh_source(data_dir, app, ssh_url)
    return _https_source(data_dir, url, allow_file)


def describe(data_dir: Path, app: str, url: str, ssh_url: str, allow_file: bool) -> str:
    """The URL a fetch would use, as shown to the user."""
    return source_for(data_dir, app, url, ssh_url, allow_file).shown


def fetch(
    *,
    data_dir: Path,
    repo_path: Path,
    app: str,
    url: str,
    ssh_url: str,
    ref: str,
    commit: str,
    allow_file: bool,
    emit: Callable[[str], None],
    timeout: float,
    max_blob_bytes: int,
) -> None:
    """Fetch `commit` (pushed to `ref`) into the app's repository, shallow where possible."""
    if _has_commit(repo_path, commit):
        return
    source = source_for(data_dir, app, url, ssh_url, allow_file)
    memory = gitcli.memory_cap(max_blob_bytes)
    before = _objects_size(repo_path)
    run = _Runner(source, repo_path, memory, timeout, ref)
    how = "shallow, by commit id"
    try:
        run("--depth=1", commit)
    except NotServedById:
        emit(f"       {source.host} does not serve a commit by its id; fetching the tip of {ref}")
        how = f"shallow, the tip of {ref}"
        try:
            run("--depth=1", ref)
        except NotServedById:
            emit(f"       {source.host} does not serve shallow fetches; fetching all of {ref}")
            how = f"all of {ref}"
            run(ref, last=True)
        if not _has_commit(repo_path, commit):
            # The branch moved on since the push: its history has the commit.
            emit(f"       {commit[:12]} is no longer the tip of {ref}; fetching all of {ref}")
            how = f"all of {ref}"
            run(*(["--unshallow"] if (repo_path / "shallow").exists() else []), ref, last=True)
    if not _has_commit(repo_path, commit):
        raise FetchError(
            f"commit {commit[:12]} is not on {ref} at {source.shown}; was the branch "
            "force-pushed? Push again to deploy its new tip"
        )
    fetched = max(0, _objects_size(repo_path) - before)
    emit(f"       fetched {commit[:12]} ({how}, {show_size(fetched)})")


class _Runner:
    def __init__(
        self, source: _Source, repo_path: Path, memory: int, timeout: float, ref: str
    ) -> None:
        self.ref = ref
        self.source = source
        self.repo_path = repo_path
        self.memory = memory
        self.timeout = timeout

    def __call__(self, *args: str, last: bool = False) -> None:
        """Run one `git fetch`; NotServedById when a fallback may help, unless `last`."""
        command = [
            *(part for option in _OPTIONS for part in ("-c", option)),
            *self.source.options,
            "fetch",
            "--no-tags",
            "--no-write-fetch-head",
            "--quiet",
            self.source.target,
            *args,
        ]
        proc = gitcli.start(
            self.repo_path,
            *command,
            memory=self.memory,
            stdin=subprocess.DEVNULL,
            env=self.source.env,
        )
        try:
            _, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise FetchError(
                f"fetching from {self.source.shown} took longer than {self.timeout:.0f}s"
            ) from None
        finally:
            gitcli.stop(proc)
        if proc.returncode != 0:
            said = err.decode("utf-8", "replace")
            try:
                _explain(self.source, said, self.ref)
            except NotServedById:
                if not last:
                    raise
                raise FetchError(
                    f"cannot fetch {self.ref} from {self.source.shown}: "
                    f"{_last_line(_masked(self.source, said))}"
                ) from None


# What git and ssh say, in the C locale, when the server will not hand out a commit by id or
# shallow; anything else ends the fetch.
_NOT_BY_ID = re.compile(
    r"not our ref|unadvertised object|does not support shallow|no such remote ref|"
    r"couldn't find remote ref|does not support (the )?protocol|shallow capabilit",
    re.IGNORECASE,
)


def _explain(source: _Source, said: str, ref: str) -> None:
    """Raise what the failed fetch means for the user, or NotServedById."""
    text = _masked(source, said)
    if source.ssh is not None:
        _explain_ssh(source, text)
    lowered = text.lower()
    if "could not read username" in lowered or "could not read password" in lowered:
        raise FetchError(
            f"authentication required for {source.shown}: set credentials with homeport "
            f"credentials set {_suggested_prefix(source.shown)} --username USER "
            "--password-stdin (a token with read access as the password)"
        )
    if "authentication failed" in lowered or "returned error: 403" in lowered:
        if source.credential is not None:
            raise FetchError(
                f"{source.host} refused the credentials for {source.credential.prefix} (user "
                f"{source.credential.username!r}) when fetching {source.shown}: check that the "
                "token is valid and can read the repository, then set it again with homeport "
                f"credentials set {source.credential.prefix} --username USER --password-stdin"
            )
        raise FetchError(
            f"{source.host} refused the credentials in the clone URL {source.shown}; set "
            f"working ones with homeport credentials set {_suggested_prefix(source.shown)} "
            "--username USER --password-stdin"
        )
    if "repository" in lowered and "not found" in lowered:
        raise FetchError(
            f"{source.shown} was not found; check the repository exists and, if it is "
            "private, that the credentials for it can read it (homeport credentials list)"
        )
    if _NOT_BY_ID.search(text):
        raise NotServedById
    raise FetchError(f"cannot fetch {ref} from {source.shown}: {_last_line(text)}")


def _explain_ssh(source: _Source, text: str) -> None:
    assert source.ssh is not None
    host = source.host
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or re.search(
        r"host key for \S+ has changed", text, re.IGNORECASE
    ):
        offered = sshkeys.scan(source.ssh.host, source.ssh.port)
        pinned = sshkeys.described(
            sshkeys.pinned(source.data_dir, source.ssh.host, source.ssh.port)
        )
        raise FetchError(
            f"the SSH host key of {host} CHANGED and does not match the pinned one "
            f"({pinned}); it now offers {sshkeys.described(offered) or 'no key'}. This can "
            "be an attack: fetch nothing from it until you know why. If the server's key "
            f"really changed, trust the new one with homeport credentials trust-host {host} "
            "--replace"
        )
    if "Host key verification failed" in text:
        offered = sshkeys.scan(source.ssh.host, source.ssh.port)
        raise FetchError(
            f"the SSH host {host} is not trusted yet; it offers "
            f"{sshkeys.described(offered) or 'no key homeport could read'}. Check that "
            f"against the fingerprints its provider publishes, then run homeport credentials "
            f"trust-host {host}"
        )
    if "Permission denied" in text:
        raise FetchError(
            f"{host} refused the deploy key of app {source.app!r} for {source.shown}: add the "
            f"public key (homeport credentials ssh-key {source.app}) to the repository as a "
            "deploy key"
        )
    if "does not appear to be a git repository" in text or "not found" in text.lower():
        raise FetchError(
            f"{source.shown} was not found over SSH; check the repository exists and that "
            f"app {source.app!r}'s deploy key was added to it"
        )


def _masked(source: _Source, text: str) -> str:
    for secret in source.secrets:
        text = text.replace(secret, "***")
    return text


def _suggested_prefix(shown: str) -> str:
    """https://host/owner/ for https://host/owner/repo.git (https://host/ without an owner)."""
    parts = urlsplit(shown)
    segments = parts.path.strip("/").split("/")
    owner = f"/{segments[0]}/" if len(segments) >= 2 else "/"
    return urlunsplit((parts.scheme, parts.netloc, owner, "", ""))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("fatal:", "error:")):
            return line.partition(":")[2].strip()[:300]
    return lines[-1][:300] if lines else "git gave no reason"


def _has_commit(repo_path: Path, commit: str) -> bool:
    proc = gitcli.start(
        repo_path,
        "cat-file",
        "-e",
        f"{commit}^{{commit}}",
        memory=gitcli.MIN_MEMORY,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc.wait() == 0


def _objects_size(repo_path: Path) -> int:
    total = 0
    for root, _, files in os.walk(repo_path / "objects"):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
