"""deploy/ installs homeport: the manifests pass the API server's dry run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support.cluster import KUBECONFIG, Kube, wait_until

ROOT = Path(__file__).resolve().parent.parent


def _kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(KUBECONFIG), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_manifests_pass_server_dry_run(kube: Kube) -> None:
    """kubectl apply --dry-run=server -k deploy/ is accepted, and every container has limits."""
    rendered = _kubectl("kustomize", str(ROOT / "deploy"))
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == sorted(
        {
            "Namespace",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "PersistentVolumeClaim",
            "Deployment",
            "Service",
        }
    )
    for doc in docs:
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                assert container["resources"]["limits"]["memory"], doc["metadata"]["name"]
                assert container["resources"]["requests"], doc["metadata"]["name"]
    # Namespaced objects need their namespaces to exist even in a dry run: make the missing
    # ones for real, and remove what this test made.
    made = []
    for doc in docs:
        if doc["kind"] == "Namespace":
            name = doc["metadata"]["name"]
            # Another test may have just deleted it: a terminating namespace takes no objects.
            wait_until(
                lambda name=name: (
                    "Terminating"
                    not in _kubectl(
                        "get", "namespace", name, "-o", "jsonpath={.status.phase}"
                    ).stdout
                ),
                timeout=120,
                what=f"namespace {name} to finish terminating",
            )
            if _kubectl("get", "namespace", name).returncode != 0:
                assert _kubectl("create", "namespace", name).returncode == 0
                made.append(name)
    try:
        result = _kubectl("apply", "--dry-run=server", "-k", str(ROOT / "deploy"))
        assert result.returncode == 0, result.stderr
        assert "deployment.apps/homeport created (server dry run)" in result.stdout
    finally:
        for name in made:
            _kubectl("delete", "namespace", name, "--wait=false")
