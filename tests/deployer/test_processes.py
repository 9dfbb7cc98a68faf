"""Processes and cron entries of a release on the real test cluster."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from homeport import lifecycle
from homeport.deployer import cron, objects, processes
from homeport.deployer.kube import Kube
from homeport.errors import NotFound
from homeport.lifecycle import ReleaseFailed
from homeport.records import releases
from homeport.settings import Settings
from homeport.spec import CronSpec, ProcessSpec
from tests.deployer.conftest import Apps
from tests.deployer.test_deploy import (
    APP,
    HEALTHY,
    _deploy,
    _get,
    _job,
    _page_poller,
    _rollback,
)
from tests.support.cluster import cluster_client
from tests.support.waiting import wait_until

WORKER = ("sh", "-c", 'echo "worker of $GREETING started"; exec sleep 3600')
CRASH = ("sh", "-c", "echo starting; exit 2")
WITH_WORKER = replace(HEALTHY, processes={"worker": ProcessSpec(command=WORKER)})


def _deployment(settings: Settings, name: str) -> dict[str, Any] | None:
    with Kube(settings) as kube:
        return kube.get("deployments", name)


def _worker_log(settings: Settings) -> str:
    """Output of the worker's pods, read through the Kubernetes API."""
    core = cluster_client().core
    text = ""
    selector = f"{processes.PROCESS_KEY}=worker"
    for pod in core.list_namespaced_pod(settings.namespace, label_selector=selector).items:
        if pod.status.phase == "Running":
            text += core.read_namespaced_pod_log(pod.metadata.name, settings.namespace)
    return text


def _template(dep: dict[str, Any]) -> tuple[int | None, str | None, set[str]]:
    return objects.template_release(dep), objects.template_image(dep), objects.template_secrets(dep)


@pytest.mark.cluster
def test_a_process_runs_with_its_release_goes_when_removed_and_comes_back_on_rollback(
    settings: Settings, apps: Apps
) -> None:
    """A worker runs the release's image and env with no Service; removed, it is deleted; a
    rollback to the release that had it creates it again."""
    lines: list[str] = []
    first = _deploy(settings, apps.one, WITH_WORKER, lines)
    assert first.status == "live"
    worker = _deployment(settings, "web-worker")
    assert worker is not None
    assert _template(worker) == (1, apps.one, {"web-v1"})
    labels = worker["metadata"]["labels"]
    assert labels[processes.PART_OF] == APP and labels[processes.PROCESS_KEY] == "worker"
    assert objects.NAME_LABEL not in worker["spec"]["template"]["metadata"]["labels"]
    assert worker["status"]["availableReplicas"] == 1
    assert "       worker: running for 5s without a restart" in lines
    assert lines.index("       worker: running for 5s without a restart") < lines.index(
        "       1 of 1 new pods ready"
    )
    wait_until(
        lambda: "worker of hello started" in _worker_log(settings),
        timeout=30,
        what="the worker's log line",
    )
    with Kube(settings) as kube:
        assert kube.get("services", "web-worker") is None
        # The web Service selects web's pods only, never the worker's.
        web_pods = kube.list("pods", selector=f"{objects.NAME_LABEL}={APP}")["items"]
    assert {p["metadata"]["labels"].get(processes.PROCESS_KEY) for p in web_pods} == {None}
    assert _get(settings) == (200, "release one")

    second = _deploy(settings, apps.two, HEALTHY, lines)
    assert second.status == "live"
    assert _deployment(settings, "web-worker") is None
    assert "       removed process worker (not in this release)" in lines

    back = _rollback(settings, 1, lines)
    assert back.status == "live"
    restored = _deployment(settings, "web-worker")
    assert restored is not None
    assert _template(restored) == (3, apps.one, {"web-v1"})
    assert _get(settings) == (200, "release one")


@pytest.mark.cluster
def test_a_crashing_process_fails_the_release_and_every_part_goes_back(
    settings: Settings, apps: Apps
) -> None:
    """A worker that exits fails its release naming it; web never left v1, the worker is v1's."""
    _deploy(settings, apps.one, WITH_WORKER)
    crashing = replace(
        HEALTHY,
        processes={
            "worker": ProcessSpec(command=CRASH),
            "mailer": ProcessSpec(command=WORKER),
        },
    )
    with _page_poller(settings) as poller, pytest.raises(ReleaseFailed) as failure:
        _deploy(settings, apps.two, crashing)
    message = str(failure.value)
    assert message.startswith(
        f"{APP} v2 failed: worker: container exited with code 2 and is crash-looping"
    ), message
    assert message.endswith("; rolled back to v1")
    assert len(poller.answers) > 5
    assert set(poller.answers) == {(200, "release one")}
    assert releases.get(settings.data_dir, APP, 2).status == "failed"
    assert releases.get(settings.data_dir, APP, 1).status == "live"
    worker = _deployment(settings, "web-worker")
    assert worker is not None and _template(worker) == (1, apps.one, {"web-v1"})
    # The process only the failed release had is gone with it.
    assert _deployment(settings, "web-mailer") is None


@pytest.mark.cluster
def test_cron_runs_the_live_release_and_a_run_started_now_completes(
    settings: Settings, apps: Apps
) -> None:
    """The CronJob has the schedule and the live image; a run started now completes; a
    rollback moves it to the restored image; an entry removed deletes its CronJob."""
    tick = CronSpec(schedule="*/5 * * * *", command=("sh", "-c", 'echo "tick $GREETING"'))
    with_cron = replace(HEALTHY, cron={"tick": tick})
    _deploy(settings, apps.one, with_cron)
    _deploy(settings, apps.two, replace(with_cron, cron={"tick": replace(tick, timeout=30)}))
    with Kube(settings) as kube:
        made = kube.get("cronjobs", "web-tick")
    assert made is not None
    assert made["spec"]["schedule"] == "*/5 * * * *"
    assert made["spec"]["concurrencyPolicy"] == "Forbid"
    job = made["spec"]["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] == 30
    # v2 has v1's env, so it runs with v1's Secret.
    assert cron.template_parts(made) == ({apps.two}, {"web-v1"})

    name = lifecycle.start_cron_run(settings, APP, "tick")
    assert name.startswith("web-tick-run-")

    def finished() -> dict[str, Any] | None:
        last = cron.runs(settings, APP).get("tick")
        return last if last and last["status"] in ("succeeded", "failed") else None

    last = wait_until(finished, timeout=60, what="the cron run to end")
    assert (last["job"], last["status"], last["manual"]) == (name, "succeeded", True)
    core = cluster_client().core
    (pod,) = core.list_namespaced_pod(
        settings.namespace, label_selector=f"batch.kubernetes.io/job-name={name}"
    ).items
    assert core.read_namespaced_pod_log(pod.metadata.name, settings.namespace) == "tick hello\n"

    with pytest.raises(NotFound, match="has no cron 'nope' \\(its cron entries: tick\\)"):
        lifecycle.start_cron_run(settings, APP, "nope")

    _rollback(settings, 1)
    with Kube(settings) as kube:
        restored = kube.get("cronjobs", "web-tick")
    assert restored is not None and cron.template_parts(restored) == ({apps.one}, {"web-v1"})
    assert "activeDeadlineSeconds" not in restored["spec"]["jobTemplate"]["spec"]

    _deploy(settings, apps.two, HEALTHY)
    with Kube(settings) as kube:
        assert kube.get("cronjobs", "web-tick") is None

        def runs_gone() -> bool:
            return not kube.list("jobs", selector=cron.selector(APP))["items"]

        wait_until(runs_gone, timeout=60, what="the removed cron's runs to be deleted")
    with pytest.raises(NotFound, match="its cron entries: none"):
        lifecycle.start_cron_run(settings, APP, "tick")


@pytest.mark.cluster
def test_a_release_interrupted_while_its_processes_roll_out_is_settled_back(
    settings: Settings, apps: Apps
) -> None:
    """A worker stopped while v2's processes rolled out leaves them at v2; settling fails v2
    and puts the processes back to the live v1's set."""
    _deploy(settings, apps.one, WITH_WORKER)
    two = replace(
        WITH_WORKER,
        processes={**WITH_WORKER.processes, "mailer": ProcessSpec(command=WORKER)},
    )

    def stop_worker(line: str) -> None:
        if line.startswith("       mailer: "):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lifecycle.deploy_release(
            settings, _job(settings), image=apps.two, spec=two, emit=stop_worker
        )
    moved = _deployment(settings, "web-worker")
    assert moved is not None and objects.template_release(moved) == 2
    (settled,) = lifecycle.settle(settings, APP)
    assert (settled.version, settled.status) == (2, "failed")
    assert settled.reason == "interrupted mid-rollout; the cluster runs v1"
    back = _deployment(settings, "web-worker")
    assert back is not None and _template(back) == (1, apps.one, {"web-v1"})
    assert _deployment(settings, "web-mailer") is None
    assert _get(settings) == (200, "release one")
