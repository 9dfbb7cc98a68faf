"""App env secrets (`homeport config set|unset|show`), kept in the Secret `<app>-config`.

They are read at deploy time and merged over the manifest's [env] into the release's immutable
Secret. Values never leave this module except into that Secret, into a job's masker
(`values`), which hides them in the job's output, and into the build (those named in
[build] secrets): `show` masks them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

from homeport.deployer import objects
from homeport.deployer.errors import Conflict
from homeport.deployer.kube import Kube
from homeport.settings import Settings

MASK = "********"
# Secrets hold at most 1 MiB; a config value is an env var, far below that.
MAX_VALUE_BYTES = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRIES = 5


def _check(values: Mapping[str, str]) -> None:
    for key, value in values.items():
        if not _ENV_NAME.fullmatch(key):
            raise ValueError(f"{key!r} is not an env variable name (letters, digits, _)")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise ValueError(f"the value of {key} is over {MAX_VALUE_BYTES // 1024} KiB")


def read(kube: Kube, app: str) -> dict[str, str]:
    """The app's config values (empty when none were ever set)."""
    secret = kube.get("secrets", objects.config_secret_name(app))
    return objects.secret_values(secret) if secret else {}


def _change(kube: Kube, app: str, data: Mapping[str, str | None]) -> list[str]:
    """Apply the change; the names set afterwards (from the write's own answer)."""
    name = objects.config_secret_name(app)
    encoded = {
        k: (base64.b64encode(v.encode()).decode() if v is not None else None)
        for k, v in data.items()
    }
    for attempt in range(_TRIES):
        current = kube.get("secrets", name)
        if current is None:
            if not any(v is not None for v in encoded.values()):
                return []
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "labels": objects.labels(app)},
                "type": "Opaque",
                "data": {k: v for k, v in encoded.items() if v is not None},
            }
            if kube.create(body) is not None:
                return sorted(body["data"])
        else:
            # Optimistic concurrency: a 409 means someone else changed it; read again.
            patch = {
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "data": encoded,
            }
            try:
                return sorted(kube.merge_patch("secrets", name, patch).get("data") or {})
            except Conflict:
                if attempt == _TRIES - 1:
                    raise
    raise AssertionError("unreachable")


def set_values(settings: Settings, app: str, values: Mapping[str, str]) -> list[str]:
    """Set config values; returns the names now set."""
    _check(values)
    with Kube(settings) as kube:
        return _change(kube, app, dict(values))


def unset(settings: Settings, app: str, keys: Iterable[str]) -> list[str]:
    """Remove config values; returns the names still set."""
    with Kube(settings) as kube:
        return _change(kube, app, {k: None for k in keys})


def values(settings: Settings, app: str) -> dict[str, str]:
    """The app's config values, for masking them in output and for [build] secrets; never
    show them."""
    with Kube(settings) as kube:
        return read(kube, app)


def show(settings: Settings, app: str) -> dict[str, str]:
    """Config names with masked values."""
    with Kube(settings) as kube:
        return {key: MASK for key in sorted(read(kube, app))}
