"""The builder's errors: each message says what failed and what the user can do about it."""

from __future__ import annotations

from homeport.errors import StageError, Unavailable
from homeport.registry import RegistryError, RegistryUnreachable

__all__ = [
    "BuildCancelled",
    "BuildError",
    "BuildKitMissing",
    "DiskFull",
    "EngineUnreachable",
    "RegistryError",
    "RegistryUnreachable",
]


class BuildError(StageError):
    """The image could not be built: no Dockerfile, a failing step, a timeout."""


class EngineUnreachable(BuildError, Unavailable):
    """The Docker engine cannot be reached."""

    dependency = "the Docker engine"


class BuildKitMissing(BuildError):
    """BuildKit builds do not work: Docker's buildx plugin is missing or broken."""


class DiskFull(BuildError):
    """The engine's data root is short of HOMEPORT_MIN_FREE_DISK even after pruning."""


class BuildCancelled(Exception):
    """The build was stopped because its result is no longer wanted (a newer push is queued).

    Not a HomeportError: nothing failed, and the job's owner decides what it means.
    """
