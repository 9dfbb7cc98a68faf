"""The builder: a pushed commit becomes an image in the registry.

build_and_push() is the entry point; homeport.registry.prune() drops old images from the registry.
"""

from __future__ import annotations

from homeport.builder.build import BuiltImage, build_and_push
from homeport.builder.errors import BuildError, RegistryError

__all__ = ["BuildError", "BuiltImage", "RegistryError", "build_and_push"]
