"""Deploys, failed rollouts and rollbacks on the real test cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from homeport import lifecycle
from homeport.deployer import appconfig, deploy, objects
from homeport.deployer.kube import Kube
from homeport.errors import NotFound
from homeport.lifecycle import ReleaseFailed
from homeport.records import jobs, releases
from homeport.release import Release, ReleaseUnavailable
from homeport.settings import Settings
from homeport.spec import RunSpec
from tests.deployer.conftest import Apps
from tests.deployer.images import MISSING
from tests.deployer.records import job_record as _job
from tests.support.cluster import Poller

APP = "web"
HEALTHY = RunSpec(health_path="/healthz", health_timeout=60, env={"GREETING": "hello"})


def _get(settings: Settings, path: str = "/") -> tuple[int, str]:
    with Kube(settings) as kube:
        status, body = kube.proxy_get(APP, path)
    return status, body.decode(errors="replace").strip()


def _deploy(
    settings: Settings, image: str, spec: RunSpec = HEALTHY, lines: list[str] | None = None
) -> Release:
    return lifecycle.deploy_release(
        settings,
        _job(settings),
        image=image,
        spec=spec,
        emit=lines.append if lines is not None else print,
    )


def _rollback(settings: Settings, version: int | None, lines: list[str] | None = None) -> Release:
    job = _job(settings, "rollback", version)
    return lifecycle.rollback_release(settings, job, lines.append if lines is not None else print)


@contextmanager
def _page_poller(settings: Settings) -> Iterator[Poller]:
    """Polls the app's page through its Service for as long as the block runs."""
    with Kube(settings) as kube:

        def fetch() -> tuple[int, str]:
            status, body = kube.proxy_get(APP, "/")
            return status, body.decode(errors="replace").strip()

        with Poller(fetch) as poller:
            yield poller


@pytest.mark.cluster
def test_a_good_deploy_goes_live_and_serves(settings: Settings, apps: Apps) -> None:
    """A healthy image becomes live and answers through its Service."""
    lines: list[str] = []
    release = _deploy(settings, apps.one, replace(HEALTHY, ingress_host="web.home.arpa"), lines)
    assert release.version == 1
    assert release.status == "live"
    assert _get(settings) == (200, "release one")
    assert _get(settings, "/env.txt") == (200, "hello")
    assert lines[0].startswith(f"-----> Rolling out {APP} v1 (127.0.0.1:5000/hp-web@sha256:")
    assert "       1 of 1 new pods ready" in lines
    assert lines[-1] == f"-----> {APP} v1 is live"
    assert "hello" not in "\n".join(lines)  # env values are never printed
    with Kube(settings) as kube:
        ingress = kube.get("ingresses", APP)
    assert ingress is not None
    assert ingress["spec"]["rules"][0]["host"] == "web.home.arpa"
    # A later release without a host takes the route away.
    _deploy(settings, apps.two, HEALTHY, lines)
    with Kube(settings) as kube:
        assert kube.get("ingresses", APP) is None


@pytest.mark.cluster
def test_without_automatic_rollback_a_failure_says_how_to_roll_back(
    settings: Settings, apps: Apps
) -> None:
    """With rollback_on_failure off the release is failed and the message names the command."""
    _deploy(settings, apps.one)
    manual = replace(settings, rollback_on_failure=False)
    with pytest.raises(ReleaseFailed, match=r"homeport rollback web v1") as failure:
        _deploy(manual, apps.no_health, replace(HEALTHY, health_timeout=5))
    assert "not ready within 5s" in str(failure.value)
    assert releases.get(settings.data_dir, APP, 2).status == "failed"
    assert _get(settings) == (200, "release one")  # maxUnavailable 0 kept the old pod serving


@pytest.mark.cluster
def test_failing_readiness_rolls_back_and_old_release_keeps_serving(
    settings: Settings, apps: Apps
) -> None:
    """A release whose health check 404s is rolled back; every request meanwhile got v1."""
    _deploy(settings, apps.one)
    with _page_poller(settings) as poller, pytest.raises(ReleaseFailed) as failure:
        _deploy(settings, apps.no_health, replace(HEALTHY, health_timeout=15))
    message = str(failure.value)
    assert message.startswith(f"{APP} v2 failed: readiness probe failed: HTTP 404 on /healthz (")
    assert message.endswith("; rolled back to v1")
    assert len(poller.answers) > 20
    assert set(poller.answers) == {(200, "release one")}
    assert releases.get(settings.data_dir, APP, 2).status == "failed"
    assert "HTTP 404" in releases.get(settings.data_dir, APP, 2).reason
    assert releases.get(settings.data_dir, APP, 1).status == "live"
    assert _get(settings) == (200, "release one")


@pytest.mark.cluster
def test_crash_loop_is_rolled_back_long_before_the_timeout(settings: Settings, apps: Apps) -> None:
    """A crash-looping release is detected by its pod state, not by waiting out the timeout."""
    _deploy(settings, apps.one)
    timeout = 180
    started = time.monotonic()
    with pytest.raises(ReleaseFailed, match=r"exited with code 1 and is crash-looping") as failure:
        _deploy(settings, apps.crash, replace(HEALTHY, health_timeout=timeout))
    elapsed = time.monotonic() - started
    assert elapsed < timeout / 3, f"took {elapsed:.0f}s"
    assert str(failure.value).endswith("; rolled back to v1")
    assert _get(settings) == (200, "release one")


@pytest.mark.cluster
def test_unpullable_image_is_rolled_back(settings: Settings, apps: Apps) -> None:
    """An image the registry does not have fails fast, naming the image."""
    _deploy(settings, apps.one)
    with pytest.raises(ReleaseFailed, match=rf"image {MISSING} cannot be pulled: ") as failure:
        _deploy(settings, MISSING, replace(HEALTHY, health_timeout=120))
    assert str(failure.value).endswith("; rolled back to v1")
    assert _get(settings) == (200, "release one")


@pytest.mark.cluster
def test_first_release_failing_is_left_failed_with_a_clear_message(
    settings: Settings, apps: Apps
) -> None:
    """With nothing to roll back to, the failure says so and the release is failed."""
    with pytest.raises(ReleaseFailed, match="no earlier release to roll back to"):
        _deploy(settings, apps.crash)
    assert releases.get(settings.data_dir, APP, 1).status == "failed"
    assert releases.live(settings.data_dir, APP) is None


@pytest.mark.cluster
def test_rollback_restores_code_and_config_of_an_old_release(
    settings: Settings, apps: Apps
) -> None:
    """Rolling back to v1 serves v1's page and v1's env, as a new release; retention prunes."""
    for image, greeting in ((apps.one, "one"), (apps.two, "two"), (apps.three, "three")):
        _deploy(settings, image, replace(HEALTHY, env={"GREETING": greeting}))
    assert _get(settings, "/env.txt") == (200, "three")
    lines: list[str] = []
    back = _rollback(settings, 1, lines)
    assert (back.version, back.rollback_of, back.status) == (4, 1, "live")
    assert back.job_id is not None and jobs.get(settings.data_dir, back.job_id).kind == "rollback"
    assert back.image == apps.one
    assert _get(settings) == (200, "release one")
    assert _get(settings, "/env.txt") == (200, "one")
    assert releases.get(settings.data_dir, APP, 3).status == "rolled_back"
    assert lines[0].startswith(f"-----> Rolling back {APP} to v1 as v4 (")
    # Default target: the release before the live one that was itself live.
    again = _rollback(settings, None, lines)
    assert again.rollback_of == 3
    assert _get(settings, "/env.txt") == (200, "three")

    every = releases.history(settings.data_dir, APP)
    kept_releases, dropped = lifecycle.retained(every, releases.live(settings.data_dir, APP), 1)
    kept = deploy.keep_digests(settings, kept_releases, dropped)
    assert kept == {apps.three.rpartition("@")[2]}
    with Kube(settings) as kube:
        assert kube.get("secrets", "web-v3") is not None  # the running release's Secret
        assert kube.get("secrets", "web-v2") is None
        assert kube.get("secrets", "web-v1") is None
    with pytest.raises(ReleaseUnavailable, match="Secret web-v1 was deleted"):
        _rollback(settings, 1)


@pytest.mark.cluster
def test_releases_with_the_same_env_share_the_live_release_secret(
    settings: Settings, apps: Apps
) -> None:
    """A deploy whose env is the live release's runs with that release's Secret; another env
    gets a Secret of its own; retention keeps a shared Secret while a kept release uses it."""
    first = _deploy(settings, apps.one)
    second = _deploy(settings, apps.two)
    assert deploy.secret_of(second) == "web-v1"
    assert _get(settings, "/env.txt") == (200, "hello")
    third = _deploy(settings, apps.three, replace(HEALTHY, env={"GREETING": "changed"}))
    assert deploy.secret_of(third) == "web-v3"
    assert _get(settings, "/env.txt") == (200, "changed")
    with Kube(settings) as kube:
        assert kube.get("secrets", "web-v2") is None
    kept = [r for r in releases.history(settings.data_dir, APP) if r.version != first.version]
    deploy.keep_digests(settings, kept, [first])
    with Kube(settings) as kube:
        assert kube.get("secrets", "web-v1") is not None  # v2 runs with it
    back = _rollback(settings, 2)
    assert deploy.secret_of(back) == "web-v1"
    assert _get(settings) == (200, "release two")
    assert _get(settings, "/env.txt") == (200, "hello")


@pytest.mark.cluster
def test_rollback_of_an_unknown_version_is_not_found(settings: Settings, apps: Apps) -> None:
    """Naming a release that never existed raises NotFound."""
    _deploy(settings, apps.one)
    with pytest.raises(NotFound, match="has no release v7"):
        _rollback(settings, 7)


@pytest.mark.cluster
def test_rollback_to_an_image_gone_from_the_registry_is_refused(
    settings: Settings, apps: Apps
) -> None:
    """A release whose image was pruned cannot be rolled back to, and nothing changes."""
    _deploy(settings, apps.one)
    _deploy(settings, apps.two)
    with releases.db.connect(settings.data_dir) as conn:
        conn.execute("UPDATE releases SET image = ? WHERE version = 1", (MISSING,))
    with pytest.raises(ReleaseUnavailable, match="no longer in the registry"):
        _rollback(settings, 1)
    assert releases.live(settings.data_dir, APP) is not None
    assert len(releases.history(settings.data_dir, APP)) == 2


@pytest.mark.cluster
def test_reconcile_settles_a_release_left_deploying(settings: Settings, apps: Apps) -> None:
    """A rollout whose worker died is marked live from what the cluster runs."""
    _deploy(settings, apps.one)
    stuck = releases.create(
        settings.data_dir,
        app=APP,
        commit="1" * 40,
        image=apps.two,
        config=deploy.snapshot(HEALTHY, HEALTHY.env),
    )
    never = releases.create(
        settings.data_dir,
        app=APP,
        commit="2" * 40,
        image=apps.three,
        config=deploy.snapshot(HEALTHY, HEALTHY.env),
    )
    with Kube(settings) as kube:  # what the dead worker got done before it died
        kube.create(objects.release_secret(APP, stuck.version, HEALTHY.env))
        kube.apply(objects.deployment(APP, stuck.version, apps.two, HEALTHY, "web-v2"))
    settled = lifecycle.settle(settings, APP)
    assert {(r.version, r.status) for r in settled} == {(2, "live"), (3, "superseded")}
    assert releases.get(settings.data_dir, APP, 1).status == "superseded"
    assert releases.deploying(settings.data_dir) == []
    assert never.version == 3
    assert _get(settings) == (200, "release two")


@pytest.mark.cluster
def test_app_config_overrides_manifest_env_and_is_masked(settings: Settings, apps: Apps) -> None:
    """`config set` values override [env] in the next release; show never reveals them."""
    # The fixture's namespace does not exist yet: the first write makes it.
    with Kube(settings) as kube:
        assert kube.get("secrets", objects.config_secret_name(APP)) is None
    set_now = appconfig.set_values(settings, APP, {"GREETING": "from config", "TOKEN": "s3cret"})
    assert set_now == ["GREETING", "TOKEN"]
    with Kube(settings) as kube:
        namespace = kube.request("GET", f"/api/v1/namespaces/{settings.namespace}")
    assert namespace["metadata"]["name"] == settings.namespace
    assert appconfig.show(settings, APP) == {"GREETING": "********", "TOKEN": "********"}
    lines: list[str] = []
    _deploy(settings, apps.one, lines=lines)
    assert _get(settings, "/env.txt") == (200, "from config")
    assert "s3cret" not in "\n".join(lines)
    assert appconfig.unset(settings, APP, ["GREETING"]) == ["TOKEN"]
    _deploy(settings, apps.one)
    assert _get(settings, "/env.txt") == (200, "hello")


@pytest.mark.cluster
def test_an_interrupted_rollout_is_settled_by_the_next_deploy(
    settings: Settings, apps: Apps
) -> None:
    """A worker stopped mid-rollout leaves v1 deploying; the next deploy settles it first."""

    def stop_worker(line: str) -> None:
        if "new pods ready" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lifecycle.deploy_release(
            settings, _job(settings), image=apps.one, spec=HEALTHY, emit=stop_worker
        )
    (stuck,) = releases.deploying(settings.data_dir, APP)
    assert stuck.reason.startswith("interrupted mid-rollout")
    second = _deploy(settings, apps.two)
    assert second.version == 2
    assert releases.get(settings.data_dir, APP, 1).status == "superseded"
    assert releases.deploying(settings.data_dir) == []
    assert _get(settings) == (200, "release two")
