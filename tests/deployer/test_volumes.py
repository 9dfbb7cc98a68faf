"""Volumes on the real test cluster: claims bound by the local-path provisioner."""

from __future__ import annotations

from dataclasses import replace

import pytest

from homeport import lifecycle
from homeport.deployer.kube import Kube
from homeport.lifecycle import ReleaseFailed
from homeport.release import Release
from homeport.settings import Settings
from homeport.spec import RunSpec, Volume
from tests.deployer.records import job_record as _job
from tests.support.cluster import build_and_push

APP = "web"
# Each pod appends its release's greeting to a file on the volume when it starts, then serves
# the volume: what earlier pods wrote is still there only if the claim is.
KEEP = (
    'mkdir -p /data; echo "$GREETING" >> /data/history.txt; echo ok > /data/healthz;'
    " exec httpd -f -p 8080 -h /data"
)
# Writes too, but serves an empty directory: its readiness probe never passes.
BROKEN = 'echo "$GREETING" >> /data/history.txt; mkdir -p /empty; exec httpd -f -p 8080 -h /empty'
DATA = Volume(name="data", path="/data", size="16Mi")


@pytest.fixture(scope="module")
def images(cluster: object) -> dict[str, str]:
    return {
        "keep": build_and_push("hp-vol", {"README": "keep\n"}, ["sh", "-c", KEEP]),
        # The same program in another image: a rollback needs a release with other code.
        "keep2": build_and_push("hp-vol", {"README": "keep 2\n"}, ["sh", "-c", KEEP]),
        "broken": build_and_push("hp-vol", {"README": "broken\n"}, ["sh", "-c", BROKEN]),
    }


def _spec(greeting: str, *volumes: Volume) -> RunSpec:
    return RunSpec(
        health_path="/healthz", health_timeout=90, env={"GREETING": greeting}, volumes=volumes
    )


def _deploy(settings: Settings, image: str, spec: RunSpec, lines: list[str]) -> Release:
    return lifecycle.deploy_release(
        settings, _job(settings), image=image, spec=spec, emit=lines.append
    )


def _history(settings: Settings) -> list[str]:
    with Kube(settings) as kube:
        status, body = kube.proxy_get(APP, "/history.txt")
    assert status == 200, body
    return body.decode().split()


def _claim(settings: Settings, name: str = "web-data") -> dict[str, object]:
    with Kube(settings) as kube:
        claim = kube.get("persistentvolumeclaims", name)
    assert claim is not None, f"claim {name} is gone"
    return claim


@pytest.mark.cluster
def test_volume_data_survives_deploys_failures_and_rollbacks(
    settings: Settings, images: dict[str, str]
) -> None:
    """What the app wrote to its volume outlives a deploy, a rolled-back failure and a rollback."""
    lines: list[str] = []
    _deploy(settings, images["keep"], _spec("one", DATA), lines)
    assert _history(settings) == ["one"]
    claim = _claim(settings)
    uid = claim["metadata"]["uid"]  # type: ignore[index]
    assert claim["status"]["phase"] == "Bound"  # type: ignore[index]
    assert claim["spec"]["storageClassName"] == "local-path"  # type: ignore[index]
    assert "       volume data: created claim web-data (16Mi)" in lines

    _deploy(settings, images["keep2"], _spec("two", DATA), lines)
    assert _history(settings) == ["one", "two"]

    with pytest.raises(ReleaseFailed, match="rolled back to v2"):
        _deploy(settings, images["broken"], _spec("bad", DATA), lines)
    assert _history(settings)[:2] == ["one", "two"]

    rolled = lifecycle.rollback_release(settings, _job(settings, "rollback", 1), lines.append)
    assert rolled.status == "live"
    after = _history(settings)
    assert after[:2] == ["one", "two"]
    assert after[-1] == "one"  # v1's env, on the same volume
    assert _claim(settings)["metadata"]["uid"] == uid  # type: ignore[index]


@pytest.mark.cluster
def test_a_volume_dropped_from_the_manifest_is_unmounted_and_kept(
    settings: Settings, images: dict[str, str]
) -> None:
    """A release without the volume runs without it; the claim stays and the output says so."""
    lines: list[str] = []
    _deploy(settings, images["keep"], _spec("one", DATA), lines)
    uid = _claim(settings)["metadata"]["uid"]  # type: ignore[index]
    lines.clear()
    _deploy(settings, images["keep"], _spec("two"), lines)
    # The new pod writes to its own file system: the volume is not mounted.
    assert _history(settings) == ["two"]
    assert _claim(settings)["metadata"]["uid"] == uid  # type: ignore[index]
    assert (
        "       claim web-data is no longer a volume in homeport.toml: unmounted, kept with its"
        f" data; delete it with `kubectl -n {settings.namespace} delete pvc web-data`"
    ) in lines

    # Mounted again, it still holds what the first release wrote.
    _deploy(settings, images["keep"], _spec("three", DATA), lines)
    assert _history(settings) == ["one", "three"]


@pytest.mark.cluster
def test_a_larger_size_is_refused_by_the_class_and_the_claim_kept(
    settings: Settings, images: dict[str, str]
) -> None:
    """local-path cannot grow a claim: the deploy goes live, says so, and keeps the data."""
    lines: list[str] = []
    _deploy(settings, images["keep"], _spec("one", DATA), lines)
    lines.clear()
    bigger = replace(DATA, size="64Mi")
    release = _deploy(settings, images["keep"], _spec("two", bigger), lines)
    assert release.status == "live"
    said = [line for line in lines if "volume data:" in line]
    assert len(said) == 1
    assert said[0].startswith("       volume data: claim web-data stays at 16Mi with its data")
    assert "homeport never recreates a claim" in said[0]
    assert _history(settings) == ["one", "two"]
    assert _claim(settings)["spec"]["resources"]["requests"]["storage"] == "16Mi"  # type: ignore[index]


@pytest.mark.cluster
def test_read_write_once_pod_claims_make_deploys_recreate(
    settings: Settings, images: dict[str, str]
) -> None:
    """With ReadWriteOncePod claims old pods stop first, and the push output warns."""
    exclusive = replace(settings, volume_access_mode="ReadWriteOncePod")
    lines: list[str] = []
    _deploy(exclusive, images["keep"], _spec("one", DATA), lines)
    _deploy(exclusive, images["keep"], _spec("two", DATA), lines)
    assert _history(exclusive) == ["one", "two"]
    assert _claim(exclusive)["spec"]["accessModes"] == ["ReadWriteOncePod"]  # type: ignore[index]
    with Kube(exclusive) as kube:
        deployment = kube.get("deployments", APP)
    assert deployment is not None
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    warnings = [line for line in lines if line.startswith("-----> warning:")]
    assert len(warnings) == 2
    assert "ReadWriteOncePod" in warnings[0]
    assert "old pods stop before new ones start" in warnings[0]
