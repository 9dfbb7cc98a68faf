"""`homeport doctor` against the real engine, registry and test cluster."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from homeport.processes.doctor import RIGHTS
from tests.support.cluster import KUBECONFIG, Kube
from tests.support.servers import TOKEN, WEBHOOK_SECRET

ALL = sum(len(verbs) for _, _, verbs in RIGHTS)
SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "namespaced-kubeconfig"


def _doctor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    base.update(
        HOMEPORT_DATA_DIR=str(tmp_path / "data"),
        HOMEPORT_KUBECONFIG=str(KUBECONFIG),
        HOMEPORT_TOKEN=TOKEN,
        HOMEPORT_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "homeport", "doctor", *args],
        env=base,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _checks(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(done.stdout)["checks"]}


@pytest.fixture
def home_namespace(kube: Kube) -> Iterator[str]:
    from tests.support.cluster import delete_namespace

    name = f"hp-home-{uuid.uuid4().hex[:8]}"
    yield name
    delete_namespace(name)


def test_doctor_passes_on_the_test_setup(
    tmp_path: Path, docker_services: str, namespace: str
) -> None:
    """Engine, BuildKit, registry, cluster, namespace, rights, storage, disk, secrets: all ok."""
    done = _doctor(tmp_path, "--json", HOMEPORT_NAMESPACE=namespace)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = _checks(done)
    assert json.loads(done.stdout)["ok"] is True
    for name in ("docker engine", "buildkit", "registry", "kubeconfig", "namespace", "rights"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["rights"]["detail"].startswith(f"all {ALL} the deployer needs")
    assert checks["storage class"]["status"] == "ok"
    assert checks["pull"] == {
        "name": "pull",
        "status": "ok",
        "detail": "the cluster pulls from 127.0.0.1:5000",
        "fix": "",
    }
    assert {c["status"] for c in checks.values()} <= {"ok", "skip"}
    text = _doctor(tmp_path, HOMEPORT_NAMESPACE=namespace)
    assert text.returncode == 0 and text.stdout.strip().endswith("all checks passed")


def test_a_wrong_registry_and_a_weak_token_fail_clearly(
    tmp_path: Path, docker_services: str, namespace: str
) -> None:
    """Each failure is one line naming what is wrong and the fix; the exit code is 1."""
    done = _doctor(
        tmp_path,
        HOMEPORT_NAMESPACE=namespace,
        HOMEPORT_REGISTRY="127.0.0.1:1",
        HOMEPORT_TOKEN="abababababababababab",
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    registry = [x for x in lines if x.startswith("FAIL  registry")]
    assert len(registry) == 1
    assert "cannot push to 127.0.0.1:1" in registry[0]
    assert (
        "fix: start the registry (`docker run -d --name registry --restart=always -p"
        " 127.0.0.1:1:5000 -v homeport-registry:/var/lib/registry -e"
        " REGISTRY_STORAGE_DELETE_ENABLED=true registry:2`) or set HOMEPORT_REGISTRY"
    ) in registry[0]
    token = [x for x in lines if x.startswith("FAIL  token")]
    assert len(token) == 1 and "HOMEPORT_TOKEN is weak" in token[0]
    assert "abababab" not in done.stdout
    assert lines[-1] == "2 check(s) failed"


def test_rights_come_from_access_reviews(
    tmp_path: Path, kube: Kube, apps_namespace: str, home_namespace: str
) -> None:
    """A namespaced kubeconfig has every right in its namespace and none in another."""
    env = {**os.environ, "KUBECONFIG": str(KUBECONFIG)}
    made = subprocess.run(
        [str(SCRIPT), apps_namespace, home_namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    config = tmp_path / "namespaced.kubeconfig"
    config.write_text(made.stdout)
    own = _checks(
        _doctor(
            tmp_path, "--json", HOMEPORT_NAMESPACE=apps_namespace, HOMEPORT_KUBECONFIG=str(config)
        )
    )
    assert own["rights"]["status"] == "ok", own["rights"]
    assert own["storage class"]["status"] == "skip"
    other = _checks(
        _doctor(tmp_path, "--json", HOMEPORT_NAMESPACE="default", HOMEPORT_KUBECONFIG=str(config))
    )
    assert other["rights"]["status"] == "fail"
    assert other["rights"]["detail"].startswith(f"missing {ALL} of {ALL} in 'default'")
    assert "apply deploy/rbac.yaml" in other["rights"]["fix"]


class _NoManifests(http.server.BaseHTTPRequestHandler):
    """The local registry for pushes; its manifests never found: a registry the nodes
    cannot pull from."""

    def _forward(self) -> None:
        if "/manifests/" in self.path and self.command in ("GET", "HEAD"):
            body = b'{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)
            return
        length = int(self.headers.get("Content-Length") or 0)
        answer = requests.request(
            self.command,
            f"http://127.0.0.1:5000{self.path}",
            data=self.rfile.read(length) if length else None,
            headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
            allow_redirects=False,
            timeout=30,
        )
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.content)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_doctor_pulls_from_the_registry_with_a_pod(
    tmp_path: Path, docker_services: str, namespace: str, kube: Kube
) -> None:
    """A registry that takes pushes but that nodes cannot pull from fails `pull`, with a fix."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoManifests)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        registry = f"127.0.0.1:{server.server_address[1]}"
        checks = _checks(
            _doctor(tmp_path, "--json", HOMEPORT_NAMESPACE=namespace, HOMEPORT_REGISTRY=registry)
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert checks["registry"]["status"] == "ok", checks["registry"]
    pull = checks["pull"]
    assert pull["status"] == "fail", pull
    assert pull["detail"].startswith(f"the cluster cannot pull from {registry}: ")
    assert "plain HTTP" in pull["fix"]
    left = [
        pod.metadata.name
        for pod in kube.core.list_namespaced_pod(namespace).items
        if pod.metadata.name.startswith("homeport-doctor-pull-")
        and pod.metadata.deletion_timestamp is None
    ]
    assert left == []  # the probe pod was deleted
