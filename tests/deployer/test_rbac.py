"""deploy/rbac.yaml grants the deployer what it needs and nothing more."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from homeport.settings import Settings
from tests.deployer.images import REPO_ROOT

SA = "system:serviceaccount:homeport:homeport"


def _kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _can(kubeconfig: Path, namespace: str, verb: str, resource: str) -> bool:
    # `can-i create pods/exec` would ask about a pod named "exec": subresources go apart.
    kind, _, sub = resource.partition("/")
    where = [f"--subresource={sub}"] if sub else []
    out = _kubectl(kubeconfig, "auth", "can-i", verb, kind, *where, f"--as={SA}", "-n", namespace)
    assert out.stdout.strip() in ("yes", "no"), out.stderr
    return out.stdout.strip() == "yes"


@pytest.mark.cluster
def test_service_account_has_least_privilege(settings: Settings, cluster: Path) -> None:
    """The deployer's account can roll out in its namespace only, and cannot read all Secrets."""
    ns = settings.namespace
    manifest = (REPO_ROOT / "deploy" / "rbac.yaml").read_text().replace("homeport-apps", ns)
    made_home = _kubectl(cluster, "create", "namespace", "homeport").returncode == 0
    try:
        assert _kubectl(cluster, "create", "namespace", ns).returncode == 0
        applied = _kubectl(cluster, "apply", "-f", "-", stdin=manifest)
        assert applied.returncode == 0, applied.stderr
        allowed = [
            ("patch", "deployments.apps"),
            ("watch", "deployments.apps"),
            ("create", "deployments.apps"),
            ("delete", "deployments.apps"),
            ("list", "replicasets.apps"),
            ("watch", "pods"),
            ("create", "pods"),
            ("delete", "pods"),
            ("get", "pods/log"),
            ("list", "events"),
            ("create", "secrets"),
            ("get", "secrets"),
            ("delete", "secrets"),
            ("patch", "services"),
            ("create", "ingresses.networking.k8s.io"),
            ("delete", "ingresses.networking.k8s.io"),
            ("patch", "cronjobs.batch"),
            ("list", "cronjobs.batch"),
            ("delete", "cronjobs.batch"),
            ("create", "jobs.batch"),
            ("list", "jobs.batch"),
            ("watch", "jobs.batch"),
            ("delete", "jobs.batch"),
            ("delete", "services"),
            ("create", "persistentvolumeclaims"),
            ("list", "persistentvolumeclaims"),
            ("patch", "persistentvolumeclaims"),
            ("delete", "persistentvolumeclaims"),
        ]
        denied = [
            ("list", "secrets"),
            ("watch", "secrets"),
            ("create", "pods/exec"),
            ("create", "pods/attach"),
            ("patch", "pods"),
            ("create", "serviceaccounts/token"),
            ("create", "persistentvolumes"),
            ("deletecollection", "secrets"),
            ("create", "rolebindings.rbac.authorization.k8s.io"),
            ("patch", "namespaces"),
            ("patch", "jobs.batch"),
        ]
        assert [(v, r) for v, r in allowed if not _can(cluster, ns, v, r)] == []
        assert [(v, r) for v, r in denied if _can(cluster, ns, v, r)] == []
        for other in ("default", "kube-system"):
            assert not _can(cluster, other, "patch", "deployments.apps")
            assert not _can(cluster, other, "create", "pods")
            assert not _can(cluster, other, "get", "secrets")
    finally:
        if made_home:
            _kubectl(cluster, "delete", "namespace", "homeport", "--wait=false")
