"""RunSpec: how an app runs, as the deployer needs it.

Only the manifest makes one (Manifest.run_spec), and it is where every limit is checked;
a release record keeps the spec as JSON and from_dict reads it back as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


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
    release_command: tuple[str, ...] = ()
    """[release] command, run as a Job before the web pods change; empty: none."""
    release_timeout: int = 300
    release_rerun_on_rollback: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot."""
        data = asdict(self)
        data["env"] = dict(self.env)
        data["release_command"] = list(self.release_command)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """Inverse of to_dict; unknown keys are ignored so old snapshots stay readable."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["env"] = dict(values.get("env") or {})
        values["release_command"] = tuple(values.get("release_command") or ())
        return cls(**values)
