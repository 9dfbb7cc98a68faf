"""One-off command pods and their status, from pure data (no cluster)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from homeport.deployer import objects, runs
from homeport.deployer.kube import Kube
from homeport.errors import InvalidInput, NotFound
from homeport.release import Release
from homeport.settings import Settings
from homeport.spec import ProcessSpec, RunSpec, Volume

IMAGE = "127.0.0.1:5000/blog@sha256:" + "ab" * 32


def _release(**config: Any) -> Release:
    spec = RunSpec(memory="64Mi", cpu="100m").to_dict()
    return Release(
        app="blog",
        version=3,
        commit="c" * 40,
        image=IMAGE,
        config={"spec": spec, **config},
        status="live",
        reason="",
        created_at=0.0,
        updated_at=0.0,
    )


@pytest.mark.parametrize(
    "value", ["ls", [], None, ["ls", 1], {"0": "ls"}, ["a\0b"], ["x"] * (runs.MAX_ARGS + 1)]
)
def test_a_command_that_is_not_a_list_of_strings_is_refused(value: object) -> None:
    """Anything but a non-empty list of plain strings is InvalidInput saying what to send."""
    with pytest.raises(InvalidInput):
        runs.check_command(value)


def test_a_command_is_taken_as_argv() -> None:
    """A list of strings comes back as is, spaces and all."""
    assert runs.check_command(["sh", "-c", "echo hi; exit 7"]) == ["sh", "-c", "echo hi; exit 7"]


def test_the_run_pod_takes_the_release_image_env_and_resources_but_no_traffic() -> None:
    """The pod runs the release's image with its env Secret and [run] resources, never
    restarts, is stopped at the timeout, and carries no app label the Service selects."""
    release = _release(secret="blog-v2")
    pod = runs.pod(
        "blog",
        "0123456789ab",
        release,
        ["true"],
        runs.process_spec(release, "web"),
        process="web",
        timeout=60,
    )
    (container,) = pod["spec"]["containers"]
    assert pod["metadata"]["name"] == "blog-run-0123456789ab"
    assert container["image"] == IMAGE and container["args"] == ["true"]
    assert container["envFrom"] == [{"secretRef": {"name": "blog-v2"}}]
    assert container["resources"]["limits"] == {"memory": "64Mi", "cpu": "100m"}
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["activeDeadlineSeconds"] == 60
    assert pod["spec"]["automountServiceAccountToken"] is False
    labels = pod["metadata"]["labels"]
    assert objects.NAME_LABEL not in labels
    assert labels[runs.RUN_OF_LABEL] == "blog" and labels[objects.RELEASE_KEY] == "3"


def test_an_unknown_process_is_not_found() -> None:
    """Naming a process the release does not have says which exist."""
    with pytest.raises(
        NotFound, match="app 'blog' has no process 'worker'; its processes are: web"
    ):
        runs.process_spec(_release(), "worker")


def test_a_run_as_a_process_takes_its_resources_and_volumes() -> None:
    """--process NAME: the process's memory and cpu, and only the volumes it mounts."""
    spec = RunSpec(
        memory="64Mi",
        processes={"worker": ProcessSpec(command=("w",), memory="16Mi", volumes=("data",))},
        volumes=(Volume("data", "/data", "1Gi"), Volume("cache", "/cache", "1Gi")),
    )
    release = _release()
    release = replace(release, config={**release.config, "spec": spec.to_dict()})
    as_worker = runs.process_spec(release, "worker")
    assert (as_worker.memory, as_worker.cpu) == ("16Mi", None)
    with pytest.raises(NotFound, match="its processes are: web, worker"):
        runs.process_spec(release, "mailer")
    worker_pod = runs.pod(
        "blog", "0123456789ab", release, ["true"], as_worker, process="worker", timeout=60
    )["spec"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in worker_pod["volumes"]] == ["blog-data"]
    as_web = runs.process_spec(release, "web")
    web_pod = runs.pod(
        "blog", "0123456789ab", release, ["true"], as_web, process="web", timeout=60
    )["spec"]
    assert [m["mountPath"] for m in web_pod["containers"][0]["volumeMounts"]] == ["/data", "/cache"]


def _pod(phase: str, state: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {runs.RUN_LABEL: "0123456789ab", objects.RELEASE_KEY: "3"},
            "annotations": {runs.COMMAND_ANNOTATION: '["sh", "-c", "exit 7"]'},
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "app", "state": state}],
            **status,
        },
    }


def test_status_follows_the_pod() -> None:
    """Pending, running, exit codes, and the reasons a run failed without a plain exit."""
    pending = runs.status_of("blog", _pod("Pending", {"waiting": {"reason": "ContainerCreating"}}))
    assert (pending.state, pending.command, pending.release) == (
        "pending",
        ["sh", "-c", "exit 7"],
        3,
    )
    assert runs.status_of("blog", _pod("Running", {"running": {}})).state == "running"
    seven = runs.status_of("blog", _pod("Failed", {"terminated": {"exitCode": 7}}))
    assert (seven.state, seven.exit_code, seven.reason, seven.ended) == ("failed", 7, "", True)
    # The container ended; the pod's phase has not caught up yet.
    done = runs.status_of("blog", _pod("Running", {"terminated": {"exitCode": 0}}))
    assert (done.state, done.exit_code) == ("succeeded", 0)
    start = runs.status_of(
        "blog",
        _pod(
            "Failed", {"terminated": {"exitCode": 128, "reason": "StartError", "message": "no x"}}
        ),
    )
    assert start.reason == "the command could not start: no x"
    late = runs.status_of(
        "blog", _pod("Failed", {"terminated": {"exitCode": 137}}, reason="DeadlineExceeded")
    )
    assert late.reason == "the command ran past HOMEPORT_RUN_TIMEOUT and was stopped"
    unscheduled = _pod("Pending", {})
    unscheduled["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "message": "0/1 nodes: Insufficient memory."}
    ]
    waiting = runs.status_of("blog", unscheduled)
    assert (waiting.state, waiting.reason) == (
        "pending",
        "waiting for room in the cluster: 0/1 nodes: Insufficient memory.",
    )
    pull = runs.status_of("blog", _pod("Pending", {"waiting": {"reason": "ImagePullBackOff"}}))
    assert (pull.state, pull.exit_code) == ("failed", None)
    assert pull.reason.startswith("the command could not start: ImagePullBackOff")


def test_run_ids_are_checked_before_any_lookup() -> None:
    """An id that is not 12 hex digits is NotFound saying what ids look like."""
    with pytest.raises(NotFound, match="run ids are 12 hex digits"):
        runs.check_id("../../secrets")


@pytest.mark.cluster
def test_run_pods_past_their_bound_are_reaped_and_nothing_else(settings: Settings) -> None:
    """reap deletes run pods older than the run timeout plus RUN_KEEP, never other pods."""
    release = _release()
    with Kube(settings) as kube:
        kube.ensure_namespace()
        run = runs.pod(
            "blog", "0123456789ab", release, ["true"], RunSpec(), process="web", timeout=60
        )
        other = {**run, "metadata": {"name": "blog-other", "labels": objects.labels("blog")}}
        assert kube.create(run) is not None and kube.create(other) is not None
        assert runs.reap(kube, timeout=3600) == []
        # A bound already passed: every run pod is past it.
        assert runs.reap(kube, timeout=-runs.RUN_KEEP - 5) == ["blog-run-0123456789ab"]
        names = [p["metadata"]["name"] for p in kube.list("pods").get("items") or []]
        assert "blog-other" in names and "blog-run-0123456789ab" not in names
