"""Fixtures and helpers for tests that run on the local test cluster (tests/cluster/up)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = REPO_ROOT / "tests" / "cluster"
STATE = Path(os.environ.get("HOMEPORT_CLUSTER_STATE", "/var/lib/homeport-test/cluster"))
KUBECONFIG = STATE / "admin.kubeconfig"
REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = "homeport-base:busybox"


@dataclass
class Kube:
    """Clients for the test cluster, authenticated as its admin."""

    api: Any
    core: Any
    apps: Any


def cluster_client() -> Kube:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(KUBECONFIG))
    return Kube(api=api, core=client.CoreV1Api(api), apps=client.AppsV1Api(api))


@pytest.fixture(scope="session")
def kube() -> Kube:
    """The test cluster's API; fails (never skips) when the cluster is not up."""
    hint = "start it with tests/cluster/up (scripts/test does this)"
    if not KUBECONFIG.exists():
        pytest.fail(f"the test cluster is not set up: no {KUBECONFIG}; {hint}", pytrace=False)
    kube = cluster_client()
    try:
        kube.core.read_namespace("default", _request_timeout=5)
    except Exception as error:  # any failure here means the same thing to the reader
        pytest.fail(f"the test cluster does not answer ({error}); {hint}", pytrace=False)
    return kube


@pytest.fixture(scope="session")
def namespace(kube: Kube) -> Iterator[str]:
    """A namespace of this test run's own, deleted at the end."""
    name = f"homeport-test-{uuid.uuid4().hex[:8]}"
    create_namespace(kube, name)
    yield name
    delete_namespace(name)


def delete_namespace(name: str) -> None:
    """Delete a test namespace; gone already (or never made) is fine."""
    from kubernetes.client.exceptions import ApiException

    try:
        cluster_client().core.delete_namespace(name)
    except ApiException as error:
        if error.status != 404:  # a test that restarted the cluster took it already
            raise


def create_namespace(kube: Kube, name: str) -> None:
    kube.core.create_namespace({"metadata": {"name": name}})
    # Pods need the namespace's default ServiceAccount, made by the controller-manager.
    wait_until(
        lambda: any(
            sa.metadata.name == "default"
            for sa in kube.core.list_namespaced_service_account(name).items
        ),
        timeout=30,
        what=f"the default ServiceAccount in {name}",
    )


def base_image() -> str:
    """The local busybox base image (scripts/base-image), built on first use."""
    out = subprocess.run(
        [str(REPO_ROOT / "scripts" / "base-image"), BASE_IMAGE],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def build_and_push(
    name: str,
    files: dict[str, str],
    cmd: list[str] | None = None,
    *,
    entrypoint: list[str] | None = None,
) -> str:
    """Builds an image FROM the busybox base with the given files, pushes it to the local
    registry and returns its reference by digest (127.0.0.1:5000/name@sha256:...)."""
    import docker

    base = base_image()
    cmd = cmd or ["httpd", "-f", "-p", "8080", "-h", "/www"]
    dockerfile = f"FROM {base}\nCOPY files/ /\nCMD {json.dumps(cmd)}\n"
    if entrypoint:
        dockerfile += f"ENTRYPOINT {json.dumps(entrypoint)}\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for path, text in {
            "Dockerfile": dockerfile,
            **{f"files/{k.lstrip('/')}": v for k, v in files.items()},
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    repository = f"{REGISTRY}/{name}"
    tag = uuid.uuid4().hex[:12]
    engine = docker.from_env()
    try:
        engine.images.build(
            fileobj=context, custom_context=True, tag=f"{repository}:{tag}", rm=True
        )
        digest = None
        for line in engine.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in line:
                raise RuntimeError(f"push of {repository}:{tag} failed: {line['error']}")
            digest = line.get("aux", {}).get("Digest", digest)
    finally:
        engine.close()
    if not digest:
        raise RuntimeError(f"push of {repository}:{tag} reported no digest")
    return f"{repository}@{digest}"


@pytest.fixture(scope="session")
def push_image(docker_services: str) -> Callable[..., str]:
    """build_and_push(name, files, cmd=None) -> 127.0.0.1:5000/name@sha256:..."""
    return build_and_push


def deployment(
    name: str,
    image: str,
    *,
    readiness_path: str | None = "/",
    command: list[str] | None = None,
) -> dict[str, Any]:
    """A one-replica Deployment manifest serving on port 8080."""
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 8080}],
    }
    if command:
        container["command"] = command
    if readiness_path:
        container["readinessProbe"] = {
            "httpGet": {"path": readiness_path, "port": 8080},
            "periodSeconds": 1,
            "failureThreshold": 1,
        }
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    """A Service on port 80 in front of the Deployment of the same name."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def pods_of(kube: Kube, namespace: str, app: str) -> list[Any]:
    return list(kube.core.list_namespaced_pod(namespace, label_selector=f"app={app}").items)


def service_proxy_get(kube: Kube, namespace: str, name: str, path: str = "") -> tuple[int, str]:
    """GET through the API server's service proxy, /api/v1/namespaces/NS/services/NAME:80/proxy/;
    returns the status and body."""
    from kubernetes.client.exceptions import ApiException

    try:
        response = kube.api.call_api(
            "GET",
            f"{kube.api.configuration.host}/api/v1/namespaces/{namespace}/services/{name}:80/proxy/{path}",
            _request_timeout=10,
        )
    except ApiException as error:
        return int(error.status), str(error.body)
    return int(response.status), response.read().decode()


def wait_for_page(kube: Kube, namespace: str, name: str, timeout: float = 30) -> tuple[int, str]:
    """The first 200 answer through the service proxy (endpoints can lag readiness briefly)."""
    answer: tuple[int, str] = (0, "")

    def answered() -> bool:
        nonlocal answer
        answer = service_proxy_get(kube, namespace, name)
        return answer[0] == 200

    wait_until(answered, timeout=timeout, what=f"{name} to answer through the service proxy")
    return answer


class Poller:
    """Calls `fetch` about 5 times a second in a thread until stopped, keeping every answer.

    Bounded: it stops by itself after `limit` seconds.
    """

    def __init__(self, fetch: Callable[[], tuple[int, str]], limit: float = 300) -> None:
        self.fetch = fetch
        self.limit = limit
        self.answers: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.answers.append(self.fetch())
            self._stop.wait(0.2)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
