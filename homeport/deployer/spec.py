"""RunSpec: how an app runs, as the deployer needs it (the pipeline maps the manifest onto it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# Kubernetes quantities as homeport.toml may spell them: "256Mi", "1G", "500m", "0.5".
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not between 1 and 65535")
        # The same range homeport.toml allows: a manifest that passed must not fail here.
        if not 0 <= self.replicas <= 100:
            raise ValueError(f"replicas {self.replicas} is not between 0 and 100")
        if not 1 <= self.health_timeout <= 3600:
            raise ValueError(f"health_timeout {self.health_timeout} is not between 1 and 3600 s")
        for name, value in (("memory", self.memory), ("cpu", self.cpu)):
            if value is not None and not _QUANTITY.fullmatch(value):
                raise ValueError(f"{name} {value!r} is not a quantity (e.g. 256Mi or 500m)")
        if self.health_path is not None and not self.health_path.startswith("/"):
            raise ValueError(f"health path {self.health_path!r} must start with /")
        for key in self.env:
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"env name {key!r} is not a valid variable name")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot."""
        data = asdict(self)
        data["env"] = dict(self.env)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """Inverse of to_dict; unknown keys are ignored so old snapshots stay readable."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["env"] = dict(values.get("env") or {})
        return cls(**values)
