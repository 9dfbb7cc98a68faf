"""deploy/ installs homeport: the manifests pass the API server's dry run."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from homeport.processes.redis import server_binary
from tests.support.cluster import KUBECONFIG, Kube, wait_until
from tests.support.processes import stop
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


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
            "ConfigMap",
            "NetworkPolicy",
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
        # "created", or "configured"/"unchanged" while tests/incluster has it installed.
        assert re.search(r"^deployment\.apps/homeport \w+ \(server dry run\)$", result.stdout, re.M)
        assert re.search(
            r"^networkpolicy\.networking\.k8s\.io/redis \w+ \(server dry run\)$",
            result.stdout,
            re.M,
        )
    finally:
        for name in made:
            _kubectl("delete", "namespace", name, "--wait=false")


def _render() -> list[dict[str, Any]]:
    rendered = _kubectl("kustomize", str(ROOT / "deploy"))
    assert rendered.returncode == 0, rendered.stderr
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def _container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    pod = deployment["spec"]["template"]["spec"]
    return next(c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == name)


def test_redis_needs_a_password_that_no_manifest_holds(kube: Kube) -> None:
    """Redis reads requirepass from the Secret; homeport gets the URL from it; none in clear."""
    docs = _render()
    assert not [d for d in docs if d["kind"] == "Secret"], "a Secret's value in the manifests"
    redis = _one(docs, "Deployment", "redis")
    pod = redis["spec"]["template"]["spec"]
    server = _container(redis, "redis")
    assert server["args"][0] == "/etc/redis-auth/redis.conf"
    assert not any("requirepass" in arg for arg in server["args"])
    # The init container writes the Secret's redis.conf to a memory volume: a pod mounting
    # the Secret itself would never start on a first install, since the init container is
    # what makes the Secret.
    auth = next(v for v in pod["volumes"] if v["name"] == "auth")
    assert auth["emptyDir"]["medium"] == "Memory"
    assert not [v for v in pod["volumes"] if "secret" in v]
    # The init container makes the Secret; only it holds an API token.
    assert pod["automountServiceAccountToken"] is False
    maker = _container(redis, "password")
    assert maker["command"] == ["python", "/scripts/redis-password.py"]
    token_mounts = [
        (c["name"], m["name"])
        for c in pod["initContainers"] + pod["containers"]
        for m in c.get("volumeMounts", [])
        if m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    ]
    assert token_mounts == [("password", "api-token")]
    role = _one(docs, "Role", "redis-password")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["redis-auth"],
            "verbs": ["get"],
        },
    ]
    env = {
        e["name"]: e for e in _container(_one(docs, "Deployment", "homeport"), "homeport")["env"]
    }
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-auth",
        "key": "password",
    }
    assert env["HOMEPORT_REDIS_URL"]["value"].startswith("redis://:$(REDIS_PASSWORD)@redis.")
    names = [e["name"] for e in _container(_one(docs, "Deployment", "homeport"), "homeport")["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("HOMEPORT_REDIS_URL")  # $(...) order


def test_only_homeport_may_reach_redis(kube: Kube) -> None:
    """A NetworkPolicy selects Redis and admits homeport's pod alone, on Redis's port."""
    docs = _render()
    policy = _one(docs, "NetworkPolicy", "redis")
    redis = _one(docs, "Deployment", "redis")
    homeport = _one(docs, "Deployment", "homeport")
    assert policy["metadata"]["namespace"] == "homeport"
    assert (
        policy["spec"]["podSelector"]["matchLabels"]
        == (redis["spec"]["template"]["metadata"]["labels"])
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": homeport["spec"]["template"]["metadata"]["labels"]}}
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_redis_password_secret_is_made_once(kube: Kube, namespace: str, tmp_path: Path) -> None:
    """The init container's script makes the Secret once; a second run keeps the password."""
    from kubernetes.client import CoreV1Api

    conf_file = tmp_path / "redis.conf"
    env = {**os.environ, "KUBECONFIG": str(KUBECONFIG), "NAMESPACE": namespace}
    env["CONF"] = str(conf_file)
    script = [sys.executable, str(ROOT / "deploy" / "redis-password.py")]
    first = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert f"created Secret {namespace}/redis-auth" in first.stdout
    core = CoreV1Api(kube.api)
    made = core.read_namespaced_secret("redis-auth", namespace)
    password = base64.b64decode(made.data["password"]).decode()
    assert len(password) == 64 and int(password, 16) >= 0
    conf = base64.b64decode(made.data["redis.conf"]).decode()
    assert conf == f"requirepass {password}\n"
    assert made.immutable is True
    assert password not in first.stdout + first.stderr
    second = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "exists; keeping its password" in second.stdout
    kept = core.read_namespaced_secret("redis-auth", namespace)
    assert base64.b64decode(kept.data["password"]).decode() == password
    # Each run writes the Secret's redis.conf for Redis, readable by Redis's own user.
    assert conf_file.read_text() == conf
    assert conf_file.stat().st_mode & 0o777 == 0o444
    # A real Redis given that redis.conf, as redis.yaml gives it, refuses clients without it.
    port = free_port()
    server = subprocess.Popen(
        [server_binary(), str(tmp_path / "redis.conf"), "--port", str(port),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: _answers(port), timeout=15, what="redis-server to start")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port).ping()
        assert redis.Redis.from_url(f"redis://:{password}@127.0.0.1:{port}/0").ping()
    finally:
        stop(server, "redis-server")


def _answers(port: int) -> bool:
    try:
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping()
    except redis.AuthenticationError:
        return True
    except redis.RedisError:
        return False
    return True
