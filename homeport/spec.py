"""RunSpec: how an app runs, as the deployer needs it.

Only the manifest makes one (Manifest.run_spec), and it is where every limit is checked;
a release record keeps the spec as JSON and from_dict reads it back as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProcessSpec:
    """A process of the app besides web (`[processes.NAME]`): same image and env, no Service."""

    command: tuple[str, ...]
    replicas: int = 1
    memory: str | None = None
    cpu: str | None = None
    volumes: tuple[str, ...] = ()
    """Names of `[volumes]` entries the process mounts."""


@dataclass(frozen=True)
class CronSpec:
    """A scheduled command (`[cron.NAME]`), run from the live release's image and env."""

    schedule: str
    command: tuple[str, ...]
    timeout: int | None = None
    """Seconds a run may take before it is stopped; None: no limit."""
    volumes: tuple[str, ...] = ()
    """Names of `[volumes]` entries a run mounts."""


@dataclass(frozen=True)
class Volume:
    """A persistent volume of the app: claim `<app>-<name>`, mounted at `path`."""

    name: str
    path: str
    size: str


@dataclass(frozen=True)
class RunSpec:
    """Run settings of one release; frozen so a release's snapshot cannot drift."""

    port: int = 8080
    replicas: int = 1
    memory: str | None = None
    cpu: str | None = None
    health_path: str | None = None
    health_timeout: int = 60
    env: Mapping[str, str] = field(default_factory=dict)
    ingress_host: str | None = None
    processes: Mapping[str, ProcessSpec] = field(default_factory=dict)
    cron: Mapping[str, CronSpec] = field(default_factory=dict)
    volumes: tuple[Volume, ...] = ()
    release_command: tuple[str, ...] = ()
    """[release] command, run as a Job before the web pods change; empty: none."""
    release_timeout: int = 300
    release_rerun_on_rollback: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot."""
        data = asdict(self)
        data["env"] = dict(self.env)
        data["processes"] = {name: asdict(p) for name, p in self.processes.items()}
        data["cron"] = {name: asdict(c) for name, c in self.cron.items()}
        data["volumes"] = [asdict(v) for v in self.volumes]
        data["release_command"] = list(self.release_command)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """Inverse of to_dict; unknown keys are ignored so old snapshots stay readable."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["env"] = dict(values.get("env") or {})
        values["processes"] = {
            name: ProcessSpec(
                **{
                    **_known(ProcessSpec, p),
                    "command": tuple(p["command"]),
                    "volumes": tuple(p.get("volumes") or ()),
                }
            )
            for name, p in (values.get("processes") or {}).items()
        }
        values["cron"] = {
            name: CronSpec(
                **{
                    **_known(CronSpec, c),
                    "command": tuple(c["command"]),
                    "volumes": tuple(c.get("volumes") or ()),
                }
            )
            for name, c in (values.get("cron") or {}).items()
        }
        values["volumes"] = tuple(Volume(**v) for v in values.get("volumes") or ())
        values["release_command"] = tuple(values.get("release_command") or ())
        return cls(**values)


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: v for k, v in data.items() if k in fields}
