"""homeport.toml: how an app is built and run, read from the pushed commit.

Every table and key is optional; a repository without the file gets the defaults. Unknown
tables and keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from homeport import schedules
from homeport.errors import InvalidInput
from homeport.git.commits import CommitTree
from homeport.names import LABEL
from homeport.spec import CronSpec, ProcessSpec, RunSpec, Volume

FILENAME = "homeport.toml"
# The file comes from a push and is parsed by a worker: bound what it can make us read.
MAX_MANIFEST_BYTES = 64 * 1024
MAX_ENTRIES = 200  # per [env] or [build] args table
MAX_VALUE_CHARS = 32 * 1024

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?")
_CPU = re.compile(r"[0-9]+m|[0-9]+(\.[0-9]{1,3})?")
_STAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PATH_CHARS = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")
# Each process is a Deployment and each cron entry a CronJob: bound how many a push can make.
MAX_PARTS = 20
MAX_ARGS = 256
# Process and cron names are DNS labels inside `<app>-<name>` object names.
MAX_PART_NAME = 30
# Kubernetes appends 11 characters to a CronJob's name for each Job, within 63.
MAX_CRONJOB_NAME = 52
_STORAGE = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
_MOUNT_CHARS = re.compile(r"/[A-Za-z0-9._@+=,:~-]+(/[A-Za-z0-9._@+=,:~-]+)*")
# Claims are named `<app>-<volume>`: with app names of at most 40 characters this keeps the
# claim a DNS label too, as the provisioners that name directories after it expect.
MAX_VOLUME_NAME = 22
MAX_VOLUMES = 16


class ManifestError(InvalidInput):
    """homeport.toml is not valid TOML or holds a value homeport cannot use."""


@dataclass(frozen=True)
class BuildConfig:
    """[build]: how the image is built."""

    dockerfile: str = "Dockerfile"
    """Relative to `context`, or to the repository root when it starts with "/"."""
    args: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    context: str = "."
    """The directory of the commit sent to the builder; "." is the repository root."""
    target: str | None = None
    """The stage of a multi-stage Dockerfile to build; None builds the last one."""
    secrets: tuple[str, ...] = ()
    """Names of app config values handed to the build as BuildKit secrets."""

    @property
    def dockerfile_path(self) -> str:
        """Where the Dockerfile is in the repository."""
        if self.dockerfile.startswith("/"):
            return self.dockerfile[1:]
        if self.context == ".":
            return self.dockerfile
        return f"{self.context}/{self.dockerfile}"


@dataclass(frozen=True)
class RunConfig:
    """[run]: how the container runs."""

    port: int = 8080
    replicas: int = 1
    memory: str | None = None
    cpu: str | None = None


@dataclass(frozen=True)
class HealthcheckConfig:
    """[healthcheck]: when a new release counts as ready."""

    path: str | None = None
    timeout: int = 60


@dataclass(frozen=True)
class IngressConfig:
    """[ingress]: the host name the app is served on."""

    host: str | None = None


@dataclass(frozen=True)
class ReleaseConfig:
    """[release]: a command run from the new image before its web pods start."""

    command: tuple[str, ...] = ()
    timeout: int = 300
    rerun_on_rollback: bool = False


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated homeport.toml."""

    build: BuildConfig = field(default_factory=BuildConfig)
    run: RunConfig = field(default_factory=RunConfig)
    healthcheck: HealthcheckConfig = field(default_factory=HealthcheckConfig)
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    ingress: IngressConfig = field(default_factory=IngressConfig)
    volumes: tuple[Volume, ...] = ()
    processes: Mapping[str, ProcessSpec] = field(default_factory=lambda: MappingProxyType({}))
    cron: Mapping[str, CronSpec] = field(default_factory=lambda: MappingProxyType({}))
    release: ReleaseConfig = field(default_factory=ReleaseConfig)

    def check_app(self, app: str) -> None:
        """Refuse names that do not fit the app's object names (`<app>-<cron>` CronJobs)."""
        for name in self.cron:
            if len(f"{app}-{name}") > MAX_CRONJOB_NAME:
                raise ManifestError(
                    f"{FILENAME}: [cron.{name}] makes the CronJob name {app}-{name}, longer than"
                    f" Kubernetes allows ({MAX_CRONJOB_NAME} characters); use a shorter name"
                )

    def run_spec(self) -> RunSpec:
        """How the app runs, for the deployer; every limit was checked when parsing."""
        return RunSpec(
            port=self.run.port,
            replicas=self.run.replicas,
            memory=self.run.memory,
            cpu=self.run.cpu,
            health_path=self.healthcheck.path,
            health_timeout=self.healthcheck.timeout,
            env=dict(self.env),
            ingress_host=self.ingress.host,
            processes=dict(self.processes),
            cron=dict(self.cron),
            volumes=self.volumes,
            release_command=self.release.command,
            release_timeout=self.release.timeout,
            release_rerun_on_rollback=self.release.rerun_on_rollback,
        )


def parse_manifest(text: str) -> Manifest:
    """Parse and validate the text of a homeport.toml."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{FILENAME} is larger than {MAX_MANIFEST_BYTES // 1024} KiB; keep it to the "
            "settings homeport reads"
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = "" if "at line" in str(exc) else f" (line {text.count(chr(10)) + 1} is the last)"
        raise ManifestError(f"{FILENAME} is not valid TOML: {exc}{where}; fix the syntax") from None
    except (RecursionError, ValueError) as exc:
        # Very deep nesting or integers past Python's digit limit.
        raise ManifestError(f"{FILENAME} could not be read: {exc}; simplify it") from None
    return _manifest(data)


def read_manifest(repo_path: Path, commit: str) -> Manifest:
    """The manifest in the commit's tree (defaults when it has no homeport.toml)."""
    with CommitTree(repo_path, commit) as tree:
        entry = tree.lookup(FILENAME)
        if entry is None:
            return Manifest()
        if entry.is_dir or entry.is_symlink or entry.is_submodule:
            raise ManifestError(f"{FILENAME} must be a regular file at the repository root")
        raw = tree.read(entry, MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{FILENAME} is larger than {MAX_MANIFEST_BYTES // 1024} KiB; keep it to the "
            "settings homeport reads"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"{FILENAME} is not UTF-8 text; save it as UTF-8") from None
    return parse_manifest(text)


# -- validation ------------------------------------------------------------------------------

_Check = Callable[[str, Any], Any]


def _show(value: Any) -> str:
    """A value as it would be written in TOML, shortened for a message."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = "{...}"
    elif isinstance(value, list):
        text = "[...]"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse(key: str, value: Any, allowed: str) -> ManifestError:
    return ManifestError(f"{FILENAME}: {key} = {_show(value)} is not allowed: {allowed}")


def _int_between(low: int, high: int, what: str) -> _Check:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            # "3000" in quotes is the usual slip: say that it is the quotes.
            kind = "a number, not a string: " if isinstance(value, str) else ""
            raise _refuse(key, value, f"use {kind}{what} between {low} and {high}")
        return value

    return check


def _inside(value: Any, *, rooted: bool) -> str | None:
    """value as a normalised path inside the repository, or None when it is not one."""
    if not isinstance(value, str) or not value or len(value) > 1024:
        return None
    if "\\" in value or "\0" in value:
        return None
    root = rooted and value.startswith("/")
    path = PurePosixPath(value[1:] if root else value)
    if path.is_absolute() or ".." in path.parts:
        return None
    return ("/" if root else "") + str(path)


def _dockerfile(key: str, value: Any) -> str:
    path = _inside(value, rooted=True)
    if path is None or path in (".", "/."):
        raise _refuse(
            key,
            value,
            "use a path inside the repository, relative to [build] context or starting "
            'with "/" at the repository root, e.g. "Dockerfile" or "/docker/web.Dockerfile"',
        )
    return path


def _context(key: str, value: Any) -> str:
    # The context is sent to the engine whole: a path leaving the repository could name
    # anything on the server.
    path = _inside(value, rooted=False)
    if path is None:
        raise _refuse(
            key, value, 'use a directory inside the repository, e.g. "services/web" or "."'
        )
    return path


def _target(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _STAGE.fullmatch(value):
        raise _refuse(key, value, 'use the name of a stage in the Dockerfile, e.g. "runtime"')
    return value


def _secrets(key: str, value: Any) -> tuple[str, ...]:
    allowed = 'use a list of app config names, e.g. ["NPM_TOKEN"]'
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise _refuse(key, value, allowed)
    names: list[str] = []
    for name in value:
        if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > 256:
            raise _refuse(
                key,
                name,
                "names use letters, digits and underscores and do not start with a digit, "
                'e.g. "NPM_TOKEN"',
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def _quantity(pattern: re.Pattern[str], example: str, *, numbers: bool) -> _Check:
    def check(key: str, value: Any) -> str:
        allowed = f"use a Kubernetes quantity such as {example}"
        if isinstance(value, bool):
            raise _refuse(key, value, allowed)
        if numbers and isinstance(value, int | float):
            value = str(value)
        if not isinstance(value, str) or not pattern.fullmatch(value) or len(value) > 32:
            raise _refuse(key, value, allowed)
        if float(re.sub(r"[A-Za-z]+\Z", "", value)) <= 0:
            raise _refuse(key, value, allowed + " (more than zero)")
        return value

    return check


def _health_path(key: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 1024 or not _PATH_CHARS.fullmatch(value):
        raise _refuse(key, value, 'use an HTTP path starting with "/", e.g. "/healthz"')
    return value


def _host(key: str, value: Any) -> str:
    allowed = 'use a lower-case DNS name such as "blog.home.lan"'
    if not isinstance(value, str) or not 0 < len(value) <= 253:
        raise _refuse(key, value, allowed)
    if not all(LABEL.fullmatch(label) for label in value.split(".")):
        raise _refuse(key, value, allowed)
    return value


def _string_table(what: str) -> _Check:
    def check(key: str, value: Any) -> Mapping[str, str]:
        if not isinstance(value, dict):
            raise _refuse(key, value, f'use a table of {what}, e.g. {{ NAME = "value" }}')
        if len(value) > MAX_ENTRIES:
            raise _refuse(key, value, f"use at most {MAX_ENTRIES} {what}")
        out: dict[str, str] = {}
        for name, item in value.items():
            if not _NAME.fullmatch(name):
                raise ManifestError(
                    f"{FILENAME}: {key}.{name} is not allowed: names use letters, digits and "
                    "underscores and do not start with a digit, e.g. GREETING"
                )
            if isinstance(item, bool):
                item = "true" if item else "false"
            elif isinstance(item, int | float):
                item = str(item)
            if not isinstance(item, str) or len(item) > MAX_VALUE_CHARS or "\0" in item:
                raise _refuse(f"{key}.{name}", item, 'use a string, e.g. "value"')
            out[name] = item
        return MappingProxyType(out)

    return check


def _command(key: str, value: Any) -> tuple[str, ...]:
    """A program and its arguments: [release], [processes.NAME] and [cron.NAME] commands."""
    allowed = 'use a non-empty list of strings, the program and its arguments, e.g. ["/app/run"]'
    if not isinstance(value, list) or not 0 < len(value) <= MAX_ARGS:
        raise _refuse(key, value, allowed)
    for item in value:
        if not isinstance(item, str) or len(item) > MAX_VALUE_CHARS or "\0" in item:
            raise _refuse(key, value, allowed)
    if not value[0]:
        raise _refuse(key, value, allowed + " whose first item names the program")
    return tuple(value)


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse(key, value, "use true or false")
    return value


_KEYS: dict[str, dict[str, _Check]] = {
    "build": {
        "dockerfile": _dockerfile,
        "context": _context,
        "target": _target,
        "args": _string_table("build arguments"),
        "secrets": _secrets,
    },
    "run": {
        "port": _int_between(1, 65535, "a port"),
        "replicas": _int_between(0, 100, "a number of replicas"),
        "memory": _quantity(_MEMORY, '"256Mi" or "1Gi"', numbers=False),
        "cpu": _quantity(_CPU, '"500m" or "1"', numbers=True),
    },
    "healthcheck": {
        "path": _health_path,
        "timeout": _int_between(1, 3600, "a number of seconds"),
    },
    "ingress": {"host": _host},
    "release": {
        "command": _command,
        # A release command holds up the deploy while it runs: an hour at most.
        "timeout": _int_between(1, 3600, "a number of seconds"),
        "rerun_on_rollback": _flag,
    },
}
_TABLES = (
    "build",
    "run",
    "healthcheck",
    "env",
    "ingress",
    "release",
    "volumes",
    "processes",
    "cron",
)


def _volume_names(key: str, value: Any) -> tuple[str, ...]:
    allowed = 'use a list of names of [volumes] entries, e.g. ["data"]'
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise _refuse(key, value, allowed)
    for name in value:
        if not isinstance(name, str) or len(name) > 63 or not LABEL.fullmatch(name):
            raise _refuse(key, name, allowed + " (lower-case letters, digits and -)")
    return tuple(dict.fromkeys(value))


def _schedule(key: str, value: Any) -> str:
    wrong = schedules.problem(value)
    if wrong is not None:
        raise _refuse(key, value, f"{wrong}; {schedules.EXAMPLE}")
    return str(value).strip()


_PROCESS_KEYS: dict[str, _Check] = {
    "command": _command,
    "replicas": _int_between(0, 100, "a number of replicas"),
    "memory": _KEYS["run"]["memory"],
    "cpu": _KEYS["run"]["cpu"],
    "volumes": _volume_names,
}
_CRON_KEYS: dict[str, _Check] = {
    "schedule": _schedule,
    "command": _command,
    "timeout": _int_between(1, 7 * 24 * 3600, "a number of seconds"),
    "volumes": _volume_names,
}


def _parts(
    table: str, data: Mapping[str, Any], checks: Mapping[str, _Check], example: str
) -> dict[str, dict[str, Any]]:
    """[table.NAME] entries, each checked key by key; `command` (and `schedule`) required."""
    value = data.get(table, {})
    if not isinstance(value, dict):
        raise _refuse(table, value, f"use tables such as [{table}.{example}]")
    if len(value) > MAX_PARTS:
        raise _refuse(table, value, f"use at most {MAX_PARTS} entries")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in value.items():
        if not LABEL.fullmatch(name) or len(name) > MAX_PART_NAME:
            raise ManifestError(
                f"{FILENAME}: [{table}.{name}] is not allowed: names are lower-case letters, "
                f"digits and - (at most {MAX_PART_NAME}), e.g. [{table}.{example}]"
            )
        if table == "processes" and name == "web":
            raise ManifestError(
                f"{FILENAME}: [processes.web] is not allowed: web is the app's own process, set "
                "by [run]; give other processes other names, e.g. [processes.worker]"
            )
        if not isinstance(entry, dict):
            raise _refuse(f"{table}.{name}", entry, f"use a table [{table}.{name}]")
        fields: dict[str, Any] = {}
        for key, item in entry.items():
            if key not in checks:
                raise ManifestError(
                    f"{FILENAME}: unknown key {table}.{name}.{key}; [{table}.{name}] takes "
                    + ", ".join(checks)
                )
            fields[key] = checks[key](f"{table}.{name}.{key}", item)
        for needed in ("schedule", "command"):
            if needed in checks and needed not in fields:
                raise ManifestError(
                    f"{FILENAME}: [{table}.{name}] needs {needed}, e.g. "
                    + (
                        'schedule = "0 3 * * *"'
                        if needed == "schedule"
                        else 'command = ["/app/run"]'
                    )
                )
        out[name] = fields
    return out


def volume_references(
    parts: Mapping[str, ProcessSpec | CronSpec], table: str, volumes: Container[str]
) -> None:
    """Refuse process or cron volumes that name no `[volumes]` entry."""
    for name, part in parts.items():
        for volume in part.volumes:
            if volume not in volumes:
                raise ManifestError(
                    f"{FILENAME}: {table}.{name}.volumes names {volume!r}, which is not in "
                    f"[volumes]; add [volumes.{volume}] or remove it from the list"
                )


def _mount_path(key: str, value: Any) -> str:
    allowed = 'use an absolute directory in the container, e.g. "/var/lib/blog"'
    if not isinstance(value, str) or len(value) > 1024 or not _MOUNT_CHARS.fullmatch(value):
        raise _refuse(key, value, allowed)
    if any(part in (".", "..") for part in value.split("/")):
        raise _refuse(key, value, allowed + ', without "." or ".." parts')
    return value


_VOLUME_KEYS: dict[str, _Check] = {
    "path": _mount_path,
    "size": _quantity(_STORAGE, '"1Gi" or "500Mi"', numbers=False),
}


def _volumes(data: Mapping[str, Any]) -> tuple[Volume, ...]:
    """[volumes.NAME] tables: path and size, each required."""
    table = data.get("volumes", {})
    if not isinstance(table, dict):
        raise _refuse("volumes", table, "use tables [volumes.NAME] with path and size")
    if len(table) > MAX_VOLUMES:
        raise _refuse("volumes", table, f"use at most {MAX_VOLUMES} volumes")
    out: list[Volume] = []
    paths: dict[str, str] = {}
    for name, item in table.items():
        key = f"volumes.{name}"
        if len(name) > MAX_VOLUME_NAME or not LABEL.fullmatch(name):
            raise ManifestError(
                f"{FILENAME}: [{key}] is not allowed: volume names use at most"
                f" {MAX_VOLUME_NAME} lower-case letters, digits and '-', starting and ending"
                " with a letter or digit, e.g. [volumes.data]"
            )
        if not isinstance(item, dict):
            raise _refuse(key, item, 'use a table, e.g. { path = "/data", size = "1Gi" }')
        for field_name in item:
            if field_name not in _VOLUME_KEYS:
                raise ManifestError(
                    f"{FILENAME}: unknown key {key}.{field_name}; [{key}] takes path, size"
                )
        for field_name in _VOLUME_KEYS:
            if field_name not in item:
                raise ManifestError(
                    f"{FILENAME}: {key}.{field_name} is missing; [{key}] needs path (where it"
                    ' is mounted, e.g. "/var/lib/blog") and size (e.g. "1Gi")'
                )
        path = _mount_path(f"{key}.path", item["path"])
        size = _VOLUME_KEYS["size"](f"{key}.size", item["size"])
        if path in paths:
            raise ManifestError(
                f"{FILENAME}: {key}.path = {_show(path)} is not allowed: volumes.{paths[path]}"
                " is mounted there already; give each volume its own path"
            )
        paths[path] = name
        out.append(Volume(name=name, path=path, size=size))
    return tuple(out)


def _section(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise _refuse(name, value, f"use a table [{name}]")
    checks = _KEYS[name]
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in checks:
            raise ManifestError(
                f"{FILENAME}: unknown key {name}.{key}; [{name}] takes " + ", ".join(checks)
            )
        out[key] = checks[key](f"{name}.{key}", item)
    return out


def _manifest(data: Mapping[str, Any]) -> Manifest:
    for name, value in data.items():
        if name in _TABLES:
            continue
        tables = ", ".join(f"[{t}]" for t in _TABLES)
        if not isinstance(value, dict):
            # `port = 3000` at the top: a key outside any table, most often a missing header.
            homes = [table for table, keys in _KEYS.items() if name in keys]
            hint = f"; did you mean [{homes[0]}] {name} = ...?" if homes else ""
            raise ManifestError(
                f"{FILENAME}: {name} is a key outside any table; keys go in a table ({tables})"
                + hint
            )
        raise ManifestError(f"{FILENAME}: unknown table [{name}]; use {tables}")
    env = _string_table("environment variables")("env", data.get("env", {}))
    processes = {
        name: ProcessSpec(**fields)
        for name, fields in _parts("processes", data, _PROCESS_KEYS, "worker").items()
    }
    cron = {
        name: CronSpec(**fields)
        for name, fields in _parts("cron", data, _CRON_KEYS, "backup").items()
    }
    volumes = _volumes(data)
    names = {volume.name for volume in volumes}
    volume_references(processes, "processes", names)
    volume_references(cron, "cron", names)
    return Manifest(
        build=BuildConfig(**_section("build", data)),
        run=RunConfig(**_section("run", data)),
        healthcheck=HealthcheckConfig(**_section("healthcheck", data)),
        env=env,
        ingress=IngressConfig(**_section("ingress", data)),
        processes=MappingProxyType(processes),
        cron=MappingProxyType(cron),
        volumes=volumes,
        release=ReleaseConfig(**_section("release", data)),
    )
