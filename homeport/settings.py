"""Settings: one frozen object built from HOMEPORT_* environment variables.

No other module reads os.environ; a bad value fails at start-up naming the variable.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from homeport.errors import ConfigError
from homeport.names import LABEL

_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_BRANCH = re.compile(r"[A-Za-z0-9._/-]{1,100}")
# The token, the webhook secret and the GitLab token can be guessed online: a short one
# falls to a few thousand tries even with the failed-authentication limit in place.
MIN_SECRET_LENGTH = 16
# HOMEPORT_LISTEN hosts that mean every interface: nobody reaches homeport by these names.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]"})  # noqa: S104 - recognised, not bound


def parse_size(text: str) -> int:
    """'512m', '1GiB', '4096' -> bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size (use e.g. 1048576, 512k, 64m or 2g)")
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * _UNITS[unit]


def show_size(size: int) -> str:
    """Bytes as people read them, in the units parse_size takes: 300 MB, 64 KB, 512 bytes."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def _listen(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if (
        not sep
        or not host
        or not (port.isascii() and port.isdigit())
        or not 0 <= int(port) <= 65535
    ):
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    return text


def check_url(text: str) -> str:
    """The URL without a trailing slash, or ValueError saying what an http(s) URL needs."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) URL (e.g. http://box.lan:8080)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{text!r} must be scheme, host, port and path only")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"{text!r} has a bad port: {exc}") from None
    return text.rstrip("/")


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{text!r} must be at least 1")
    return value


# Below this a job's log would keep too few lines of its start and end to be useful.
MIN_LOG_BYTES = 64 * 1024


def _log_size(text: str) -> int:
    size = parse_size(text)
    if size < MIN_LOG_BYTES:
        raise ValueError(f"{text!r} is too small to keep a useful log (use at least 64k)")
    return size


def _branch(text: str) -> str:
    if not _BRANCH.fullmatch(text) or ".." in text or text.startswith(("/", "-")):
        raise ValueError(f"{text!r} is not a branch name")
    return text


def _namespace(text: str) -> str:
    if not LABEL.fullmatch(text):
        raise ValueError(f"{text!r} is not a Kubernetes namespace name (lower-case DNS label)")
    return text


def _storage_class(text: str) -> str:
    if len(text) > 253 or not all(LABEL.fullmatch(part) for part in text.split(".")):
        raise ValueError(f"{text!r} is not a StorageClass name (e.g. local-path)")
    return text


ACCESS_MODES = ("ReadWriteOnce", "ReadWriteOncePod")


def _access_mode(text: str) -> str:
    if text not in ACCESS_MODES:
        raise ValueError(f"{text!r} is not one of " + ", ".join(ACCESS_MODES))
    return text


def _secret(text: str) -> str:
    if len(text) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"is {len(text)} characters long; use at least {MIN_SECRET_LENGTH} "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return text


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(text: str) -> str:
    # The URL may carry the Redis password: the message never repeats it.
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in _REDIS_SCHEMES or not (parts.hostname or parts.path):
        raise ValueError(
            "is not a Redis URL (use redis://[:PASSWORD@]HOST:PORT/DB or unix:///PATH; "
            "percent-encode special characters in the password); its value is not shown"
        )
    return text


# What the docker CLI needs from homeport's environment to reach the engine and find its
# plugins; nothing else (tokens, passwords) is handed to the build process.
_DOCKER_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_API_VERSION",
)


def docker_environ() -> dict[str, str]:
    """The part of this process's environment the docker CLI needs, for its subprocesses."""
    return {name: os.environ[name] for name in _DOCKER_ENV if name in os.environ}


# Events homeport sends (homeport/notify/events.py names them); cron.failed once cron jobs exist.
NOTIFY_EVENTS = frozenset({"release.live", "release.failed", "job.failed", "cron.failed"})


def _notify_urls(text: str) -> tuple[str, ...]:
    # The URLs hold tokens: the message names a position, never a value.
    urls = tuple(text.split())
    for i, url in enumerate(urls, 1):
        scheme, sep, rest = url.partition("://")
        if not sep or not scheme or not rest:
            raise ValueError(
                f"URL {i} is not an Apprise URL (e.g. ntfy://ntfy.sh/my-topic); its value is"
                " not shown"
            )
    return urls


def _http_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("is not an http:// or https:// URL; its value is not shown")
    return text.strip()


def _event_names(text: str) -> frozenset[str]:
    names = frozenset(text.replace(",", " ").split())
    unknown = sorted(names - NOTIFY_EVENTS)
    if unknown or not names:
        raise ValueError(
            f"{' '.join(unknown) or text!r} is not an event; use any of "
            + ", ".join(sorted(NOTIFY_EVENTS))
        )
    return names


def _default_data_dir() -> str:
    return str(Path.home() / ".local" / "share" / "homeport")


@dataclass(frozen=True)
class Settings:
    """Everything homeport can be told; each field maps to HOMEPORT_<FIELD>."""

    data_dir: Path = Path(_default_data_dir())
    """Repositories, job logs, the database, the token and the embedded Redis live here."""
    listen: str = "127.0.0.1:8080"
    """HOST:PORT the receiver listens on."""
    url: str = ""
    """Public URL of the receiver as users reach it (printed by `homeport up`, used by the CLI)."""
    redis_url: str | None = None
    """Redis for the queue, redis://:PASSWORD@HOST:PORT/DB; unset = a private one in DATA_DIR."""
    token: str | None = None
    """API and git password; unset = generated once and stored in DATA_DIR/token (mode 0600)."""
    webhook_secret: str | None = None
    """Secret of GitHub/Gitea webhook signatures and signed rollbacks; unset = those refused."""
    gitlab_token: str | None = None
    """Token GitLab sends in X-Gitlab-Token (in plain text); unset = GitLab webhooks refused."""
    registry: str = "127.0.0.1:5000"
    """Registry images are pushed to and pulled from."""
    namespace: str = "homeport-apps"
    """Kubernetes namespace the apps run in."""
    deploy_branch: str = "main"
    """The branch whose pushes deploy."""
    kubeconfig: str | None = None
    """Path to a kubeconfig; unset = in-cluster service account, else ~/.kube/config."""
    workers: int = 2
    """Worker processes `homeport up` starts (apps deploy in parallel, one job per app)."""
    git_threads: int = 64
    """Concurrent git requests; each push waiting for its deploy holds one for that long."""
    job_timeout: int = 1800
    """Seconds a deploy job may run before it is stopped and failed."""
    max_push_bytes: int = 512 * 1024**2
    """Largest pack a push may send (dulwich receive.maxInputSize)."""
    max_webhook_bytes: int = 1024**2
    """Largest webhook body; bigger ones get 413 before any other work."""
    max_blob_bytes: int = 256 * 1024**2
    """Largest file a deployed commit may hold (refused at push time, and by the job)."""
    max_context_bytes: int = 1024**3
    """Largest build context, after .dockerignore, that a job sends to the Docker engine."""
    max_log_bytes: int = 10 * 1024**2
    """Output kept per job: its start and its end, with a note on what was left out."""
    allow_file_urls: bool = False
    """Let webhooks fetch from file:// clone URLs (tests and local mirrors only)."""
    build_memory: int = 2 * 1024**3
    """Memory cap of each build's RUN steps, where the engine's BuildKit supports one."""
    build_cache: int = 5 * 1024**3
    """BuildKit cache kept after each build (cache mounts, layers); the rest is pruned."""
    min_free_disk: int = 2 * 1024**3
    """Free space a build needs on the engine's data root; short of it, prune, then refuse."""
    keep_releases: int = 10
    """Releases per app whose images and Secrets are kept for rollback."""
    rollback_on_failure: bool = True
    """Roll back automatically when a new release does not become ready."""
    storage_class: str | None = None
    """StorageClass of the apps' volume claims; unset = the cluster's default class."""
    volume_access_mode: str = "ReadWriteOnce"
    """Access mode of new volume claims; ReadWriteOncePod makes deploys stop old pods first."""
    notify: tuple[str, ...] = ()
    """Apprise URLs (space-separated) told about releases and failures."""
    notify_webhook: str | None = None
    """URL that gets homeport's own JSON events, signed with the webhook secret."""
    notify_events: frozenset[str] = NOTIFY_EVENTS
    """Events sent to the notification targets (comma- or space-separated names)."""
    metrics_public: bool = False
    """Serve /metrics without the token."""
    run_timeout: int = 3600
    """Seconds a one-off command (`homeport run`) may run before Kubernetes stops it."""

    @property
    def job_wait(self) -> float:
        """Seconds a push or a followed log waits for a job: its timeout plus a margin.

        The margin covers time in the queue and a dead worker's job being noticed.
        """
        return self.job_timeout + max(5, self.job_timeout // 10)

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def listens_everywhere(self) -> bool:
        """Whether HOMEPORT_LISTEN is a wildcard address (every interface)."""
        return self.host in WILDCARD_HOSTS

    @property
    def public_url(self) -> str:
        """The receiver's URL as others reach it: HOMEPORT_URL, else the listen address, with
        this machine's name in place of a wildcard (printed in remotes and hook URLs)."""
        if self.url:
            return self.url.rstrip("/")
        host = socket.gethostname() if self.listens_everywhere else self.host
        return f"http://{host}:{self.port}"

    @property
    def local_url(self) -> str:
        """The receiver's URL from this machine (the CLI's default): loopback for a wildcard."""
        if self.url:
            return self.url.rstrip("/")
        host = "127.0.0.1" if self.listens_everywhere else self.host
        return f"http://{host}:{self.port}"

    @property
    def queue_url(self) -> str:
        """HOMEPORT_REDIS_URL, else the embedded Redis's socket in the data dir."""
        return self.redis_url or f"unix://{self.redis_socket}"

    @property
    def redis_password(self) -> str | None:
        """The password in HOMEPORT_REDIS_URL, if any (percent-decoded)."""
        if not self.redis_url:
            return None
        password = urlsplit(self.redis_url).password
        return unquote(password) if password else None

    @property
    def queue_shown(self) -> str:
        """queue_url with its password replaced, for messages."""
        url = self.queue_url
        password = urlsplit(url).password
        if not password:
            return url
        scheme, sep, rest = url.partition("://")
        userinfo, at, host = rest.rpartition("@")
        user = userinfo.rpartition(":")[0]
        return f"{scheme}{sep}{user}:***{at}{host}"

    @property
    def redis_socket(self) -> Path:
        return self.data_dir / "redis" / "redis.sock"

    @property
    def token_path(self) -> Path:
        return self.data_dir / "token"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read HOMEPORT_* variables; raise ConfigError naming the first bad one."""
        env = os.environ if environ is None else environ
        parsers: dict[str, Callable[[str], Any]] = {
            "data_dir": lambda s: Path(s).expanduser(),
            "listen": _listen,
            "url": check_url,
            "redis_url": _redis_url,
            "token": _secret,
            "webhook_secret": _secret,
            "gitlab_token": _secret,
            "registry": str,
            "namespace": _namespace,
            "deploy_branch": _branch,
            "kubeconfig": str,
            "workers": _positive_int,
            "git_threads": _positive_int,
            "job_timeout": _positive_int,
            "max_push_bytes": parse_size,
            "max_webhook_bytes": parse_size,
            "max_blob_bytes": parse_size,
            "max_context_bytes": parse_size,
            "max_log_bytes": _log_size,
            "allow_file_urls": _bool,
            "build_memory": parse_size,
            "build_cache": parse_size,
            "min_free_disk": parse_size,
            "keep_releases": _positive_int,
            "rollback_on_failure": _bool,
            "storage_class": _storage_class,
            "volume_access_mode": _access_mode,
            "notify": _notify_urls,
            "notify_webhook": _http_url,
            "notify_events": _event_names,
            "metrics_public": _bool,
            "run_timeout": _positive_int,
        }
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = "HOMEPORT_" + field.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[field.name] = parsers[field.name](raw)
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
        gitlab = values.get("gitlab_token")
        if gitlab is not None and gitlab == values.get("webhook_secret"):
            # GitLab sends its token in plain text: whoever sees one delivery would hold the
            # key that signs GitHub/Gitea webhooks and rollbacks.
            raise ConfigError(
                "HOMEPORT_GITLAB_TOKEN: must differ from HOMEPORT_WEBHOOK_SECRET, because GitLab "
                "sends it in plain text with every delivery"
            )
        return cls(**values)

    def resolve_token(self) -> str:
        """The configured token, else the stored one, else a new one stored with mode 0600."""
        if self.token:
            return self.token
        stored = self.stored_token()
        path = self.token_path
        if stored:
            if len(stored) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"the token in {path} is shorter than {MIN_SECRET_LENGTH} characters; "
                    "delete the file to have a new one generated"
                )
            return stored
        path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return token

    def child_environ(self, **overrides: str) -> dict[str, str]:
        """This process's environment plus HOMEPORT_* overrides, for the processes it starts."""
        env = dict(os.environ)
        env.update({f"HOMEPORT_{k.upper()}": v for k, v in overrides.items()})
        return env

    def stored_token(self) -> str | None:
        """The token generated into DATA_DIR/token, if there is one."""
        try:
            return self.token_path.read_text().strip() or None
        except (FileNotFoundError, NotADirectoryError):
            return None

    def secrets(self) -> list[str]:
        """Values of the settings that must never appear in output (masking.known_secrets adds
        the stored credentials).

        The token counts whether it was given or generated: workers started by `homeport up`
        are not told a generated one, so they read it from the data dir.
        """
        token = self.token or self.stored_token()
        found = [
            s for s in (token, self.webhook_secret, self.gitlab_token, self.redis_password) if s
        ]
        # Notification URLs carry their services' tokens.
        found += [u for u in (*self.notify, self.notify_webhook) if u and u not in found]
        # Passwords as written in the URLs too, where they differ (percent-encoded), and as
        # they are sent (the notification webhook's goes out as Basic auth).
        for url in (self.redis_url, self.notify_webhook):
            raw = urlsplit(url).password if url else None
            for value in (raw, unquote(raw) if raw else None):
                if value and value not in found:
                    found.append(value)
        return found
