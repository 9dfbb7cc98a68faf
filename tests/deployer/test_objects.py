"""Kubernetes objects built from a release."""

from __future__ import annotations

import json

import pytest

from homeport.deployer import objects, volumes
from homeport.spec import RunSpec, Volume

IMAGE = "127.0.0.1:5000/blog@sha256:" + "ab" * 32


def _container(dep: dict) -> dict:  # type: ignore[type-arg]
    return dep["spec"]["template"]["spec"]["containers"][0]


def test_deployment_pins_image_by_digest_and_rolls_with_surge_only() -> None:
    """The Deployment runs the digest and never takes an old pod down before a new one is up."""
    dep = objects.deployment("blog", 3, IMAGE, RunSpec(), "blog-v3")
    assert _container(dep)["image"] == IMAGE
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert dep["spec"]["revisionHistoryLimit"] <= 5
    assert dep["spec"]["progressDeadlineSeconds"] > RunSpec().health_timeout


def test_deployment_refuses_a_tag() -> None:
    """An image by tag could change under a release, so it is refused."""
    with pytest.raises(ValueError, match="digest"):
        objects.deployment("blog", 1, "127.0.0.1:5000/blog:latest", RunSpec(), "blog-v1")


def test_deployment_takes_run_settings_from_the_spec() -> None:
    """Replicas, memory, cpu and port come from the manifest's run settings."""
    spec = RunSpec(port=3000, replicas=2, memory="128Mi", cpu="250m")
    dep = objects.deployment("blog", 1, IMAGE, spec, "blog-v1")
    container = _container(dep)
    assert dep["spec"]["replicas"] == 2
    assert container["ports"][0]["containerPort"] == 3000
    assert container["resources"]["limits"] == {"memory": "128Mi", "cpu": "250m"}
    assert container["resources"]["requests"] == {"memory": "128Mi", "cpu": "250m"}


def test_readiness_probe_is_http_with_a_health_path_else_tcp() -> None:
    """A health path makes an httpGet probe; without one the port is checked."""
    http = _container(objects.deployment("a", 1, IMAGE, RunSpec(health_path="/up"), "a-v1"))
    assert http["readinessProbe"]["httpGet"] == {"path": "/up", "port": 8080}
    tcp = _container(objects.deployment("a", 1, IMAGE, RunSpec(), "a-v1"))
    assert tcp["readinessProbe"]["tcpSocket"] == {"port": 8080}
    assert "httpGet" not in tcp["readinessProbe"]


def test_pod_template_names_release_and_takes_env_from_its_secret() -> None:
    """The pod template carries the release version and reads env from the release Secret."""
    dep = objects.deployment("blog", 7, IMAGE, RunSpec(env={"A": "b"}), "blog-v7")
    template = dep["spec"]["template"]
    assert template["metadata"]["annotations"][objects.RELEASE_KEY] == "7"
    assert template["metadata"]["labels"][objects.RELEASE_KEY] == "7"
    assert _container(dep)["envFrom"] == [{"secretRef": {"name": "blog-v7"}}]
    assert "env" not in _container(dep)  # values never sit in the Deployment
    assert objects.template_release(dep) == 7
    assert objects.template_secrets(dep) == {"blog-v7"}
    assert objects.template_image(dep) == IMAGE


def test_every_object_is_labelled_for_the_app() -> None:
    """All objects carry the app name and managed-by labels."""
    spec = RunSpec(ingress_host="blog.home.arpa")
    built = [
        objects.deployment("blog", 1, IMAGE, spec, "blog-v1"),
        objects.service("blog", spec),
        objects.ingress("blog", spec),
        objects.release_secret("blog", 1, {}),
    ]
    for obj in built:
        assert obj is not None
        assert obj["metadata"]["labels"][objects.NAME_LABEL] == "blog"
        assert obj["metadata"]["labels"][objects.MANAGED_LABEL] == "homeport"


def test_service_maps_port_80_to_the_container_port() -> None:
    """The Service answers on port 80 named http and forwards to the app's port."""
    svc = objects.service("blog", RunSpec(port=5000))
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 5000, "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"] == {objects.NAME_LABEL: "blog"}


def test_ingress_only_with_a_host() -> None:
    """No host, no Ingress; with a host, a rule routing it to the Service."""
    assert objects.ingress("blog", RunSpec()) is None
    ing = objects.ingress("blog", RunSpec(ingress_host="blog.home.arpa"))
    assert ing is not None
    rule = ing["spec"]["rules"][0]
    assert rule["host"] == "blog.home.arpa"
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "blog"


def test_release_secret_is_immutable_and_round_trips() -> None:
    """The release Secret is immutable and decodes to the env it was given."""
    env = {"GREETING": "héllo", "EMPTY": ""}
    secret = objects.release_secret("blog", 4, env)
    assert secret["immutable"] is True
    assert secret["metadata"]["name"] == "blog-v4"
    assert objects.secret_values(secret) == env


def test_run_spec_round_trips() -> None:
    """A RunSpec snapshot reads back equal, ignoring keys it does not know."""
    spec = RunSpec(port=3000, memory="64Mi", health_path="/h", env={"A": "1"}, ingress_host="x")
    assert RunSpec.from_dict(spec.to_dict()) == spec
    assert RunSpec.from_dict({**spec.to_dict(), "unknown": 1}) == spec


def test_volumes_become_claims_mounted_by_the_deployment() -> None:
    """Each volume is claim <app>-<name>, mounted at its path; the rollout still surges."""
    spec = RunSpec(volumes=(Volume("data", "/var/lib/blog", "1Gi"), Volume("up", "/up", "2Gi")))
    dep = objects.deployment("blog", 1, IMAGE, spec, "blog-v1")
    pod = dep["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "vol-data", "persistentVolumeClaim": {"claimName": "blog-data"}},
        {"name": "vol-up", "persistentVolumeClaim": {"claimName": "blog-up"}},
    ]
    assert _container(dep)["volumeMounts"] == [
        {"name": "vol-data", "mountPath": "/var/lib/blog"},
        {"name": "vol-up", "mountPath": "/up"},
    ]
    assert (pod["volumes"], _container(dep)["volumeMounts"]) == objects.volume_parts("blog", spec)
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    plain = objects.deployment("blog", 1, IMAGE, RunSpec(), "blog-v1")
    assert "volumes" not in plain["spec"]["template"]["spec"]
    assert "volumeMounts" not in _container(plain)


def test_recreate_replaces_the_rolling_update() -> None:
    """For claims one pod at a time may mount, old pods stop before new ones start."""
    dep = objects.deployment("blog", 1, IMAGE, RunSpec(), "blog-v1", recreate=True)
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


def test_volume_claim_names_the_class_only_when_set() -> None:
    """No class means the cluster's default; the claim carries the app and volume labels."""
    volume = Volume("data", "/data", "1Gi")
    claim = objects.volume_claim("blog", volume, None, "ReadWriteOnce")
    assert claim["metadata"]["name"] == "blog-data"
    assert claim["metadata"]["labels"][objects.VOLUME_KEY] == "data"
    assert claim["metadata"]["labels"][objects.NAME_LABEL] == "blog"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    named = objects.volume_claim("blog", volume, "fast", "ReadWriteOncePod")
    assert named["spec"]["storageClassName"] == "fast"
    assert named["spec"]["accessModes"] == ["ReadWriteOncePod"]


def test_run_spec_with_volumes_round_trips() -> None:
    """A release's snapshot keeps its volumes."""
    spec = RunSpec(volumes=(Volume("data", "/data", "1Gi"),))
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert RunSpec.from_dict({"port": 80}).volumes == ()


@pytest.mark.parametrize(
    ("text", "size"),
    [("1Gi", 2**30), ("500Mi", 500 * 2**20), ("1G", 10**9), ("1.5Gi", 3 * 2**29), ("7", 7)],
)
def test_storage_quantities_compare_in_bytes(text: str, size: int) -> None:
    """Claim sizes are compared as bytes, whatever unit each was written in."""
    assert volumes.quantity_bytes(text) == size


def test_unknown_quantities_are_not_compared() -> None:
    """A quantity homeport does not write (milli-bytes, nonsense) is left alone."""
    assert volumes.quantity_bytes("1m") is None
    assert volumes.quantity_bytes("lots") is None
