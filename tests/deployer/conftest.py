"""Fixtures for the deployer tests that need the local Kubernetes test cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from homeport.deployer.errors import ApiError
from homeport.deployer.kube import Kube
from homeport.settings import Settings
from tests.deployer import images
from tests.support.cluster import KUBECONFIG


@pytest.fixture(scope="session")
def cluster(kube: object) -> Path:
    """The admin kubeconfig of the test cluster (the kube fixture fails when it is down)."""
    return KUBECONFIG


@dataclass(frozen=True)
class Apps:
    """Images of the test app, pushed by digest."""

    one: str
    two: str
    three: str
    no_health: str
    crash: str


@pytest.fixture(scope="session")
def apps(cluster: Path) -> Apps:
    """Build the test images once per session."""
    return Apps(
        one=images.build("hp-web", "one", index="release one"),
        two=images.build("hp-web", "two", index="release two"),
        three=images.build("hp-web", "three", index="release three"),
        no_health=images.build("hp-web", "nohealth", index="no health", healthz=False),
        crash=images.build("hp-web", "crash", index="crash", crash=True),
    )


@pytest.fixture
def settings(cluster: Path, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh namespace of its own, deleted after the test."""
    namespace = f"hp-test-{uuid.uuid4().hex[:8]}"
    made = Settings(namespace=namespace, data_dir=tmp_path, kubeconfig=str(cluster))
    yield made
    with Kube(made) as kube:
        try:
            kube.request("DELETE", f"/api/v1/namespaces/{namespace}")
        except ApiError:
            pass
