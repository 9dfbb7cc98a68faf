"""The builder's errors: each message says what failed and what the user can do about it."""

from __future__ import annotations

from homeport.errors import StageError
from homeport.registry import RegistryError

__all__ = ["BuildError", "RegistryError"]


class BuildError(StageError):
    """The image could not be built: no Dockerfile, a failing step, a timeout, no engine."""
