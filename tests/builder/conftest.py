"""Fixtures for builder tests: the real Docker engine, the local registry, the base image."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeport.builder import BuiltImage, build_and_push
from homeport.manifest import Manifest
from tests.builder.support import BASE_IMAGE, REGISTRY, Build, Recorder
from tests.support.registry import delete_repository

ROOT = Path(__file__).resolve().parents[2]
BUILD_MEMORY = 256 * 1024**2


@pytest.fixture(scope="session")
def services(docker_services: str) -> str:
    """Docker engine and registry running, the local base image built; returns its tag."""
    assert docker_services == BASE_IMAGE
    return docker_services


@pytest.fixture
def app_name(services: str) -> Iterator[str]:
    """A unique app name; its registry repository and local images are removed afterwards."""
    name = "t" + uuid.uuid4().hex[:10]
    yield name
    delete_repository(name)
    images = subprocess.run(
        ["docker", "images", "-q", f"{REGISTRY}/{name}"], capture_output=True, text=True
    ).stdout.split()
    if images:
        subprocess.run(["docker", "rmi", "-f", *set(images)], capture_output=True)


@pytest.fixture(scope="session")
def pruned_stamp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build-cache prune stamp the session shares, fresh from the start: the engine's cache
    is not pruned behind these builds, whose timing tests a prune running beside them (it
    holds BuildKit's cache) would upset. The prune itself runs in the pipeline tests."""
    stamp = tmp_path_factory.mktemp("buildkit") / "build-cache.pruned"
    stamp.touch()
    return stamp


@pytest.fixture
def build(services: str, pruned_stamp: Path) -> Build:
    """build_and_push with the test registry and limits filled in."""

    def run(repo: Path, app: str, commit: str, **overrides: Any) -> BuiltImage:
        kwargs: dict[str, Any] = {
            "repo_path": repo,
            "app": app,
            "commit": commit,
            "manifest": Manifest(),
            "registry": REGISTRY,
            "build_memory": BUILD_MEMORY,
            "build_cache": 5 * 1024**3,
            "min_free_disk": 64 * 1024**2,
            "timeout": 120.0,
            "emit": Recorder(),
            "max_blob_bytes": 256 * 1024**2,
            "max_context_bytes": 1024**3,
            "pruned_stamp": pruned_stamp,
        }
        kwargs.update(overrides)
        return build_and_push(**kwargs)

    return run
