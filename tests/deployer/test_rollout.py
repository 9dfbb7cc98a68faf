"""Reading a rollout's state and naming the cause of a failure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from homeport.deployer import rollout
from homeport.deployer.objects import RELEASE_KEY

IMAGE = "127.0.0.1:5000/blog@sha256:" + "cd" * 32


def _pod(ready: bool = False, **status: Any) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": {"name": "blog-1"}, "status": {"conditions": conditions, **status}}


def _deployment(version: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "blog", "generation": 2},
        "spec": {
            "replicas": 1,
            "template": {"metadata": {"annotations": {RELEASE_KEY: str(version)}}},
        },
        "status": {"observedGeneration": 2, **status},
    }


def test_crash_loop_names_exit_code() -> None:
    """A crash-looping container is reported with its exit code."""
    pod = _pod(
        containerStatuses=[
            {
                "image": IMAGE,
                "restartCount": 1,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        ]
    )
    assert rollout.pod_failure(pod) == (
        "container exited with code 1 and is crash-looping (CrashLoopBackOff)"
    )


def test_oom_kill_is_named() -> None:
    """A container killed for memory says so."""
    status = {
        "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
    }
    assert "OOMKilled" in rollout.crash_reason(status)
    assert "after 3 restarts" in rollout.crash_reason(status)


def test_unpullable_image_names_image_and_message() -> None:
    """An image that cannot be pulled is named with the runtime's message."""
    pod = _pod(
        containerStatuses=[
            {
                "image": IMAGE,
                "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}},
            }
        ]
    )
    assert rollout.pod_failure(pod) == f"image {IMAGE} cannot be pulled: not found (ErrImagePull)"


def test_bad_container_config_is_fatal_after_a_grace_period() -> None:
    """A config error fails once it outlasts the kubelet's Secret cache catching up."""
    waiting = {"reason": "CreateContainerConfigError", "message": 'secret "blog-v9" not found'}
    pod = _pod(containerStatuses=[{"image": IMAGE, "state": {"waiting": waiting}}])
    pod["metadata"]["creationTimestamp"] = "2026-11-27T03:00:00Z"
    assert rollout.pod_failure(pod, datetime(2026, 11, 27, 3, 0, 5, tzinfo=UTC)) is None
    assert rollout.pod_failure(pod, datetime(2026, 11, 27, 3, 1, tzinfo=UTC)) == (
        'container cannot be created: secret "blog-v9" not found (CreateContainerConfigError)'
    )


def test_a_starting_pod_is_not_a_failure() -> None:
    """ContainerCreating is waiting, not failing."""
    waiting = {"reason": "ContainerCreating"}
    pod = _pod(containerStatuses=[{"image": IMAGE, "state": {"waiting": waiting}}])
    assert rollout.pod_failure(pod) is None


def test_readiness_reason_counts_probe_failures() -> None:
    """Unhealthy events become `readiness probe failed: HTTP 404 on /healthz (5 times in 12s)`."""
    events = [
        {
            "reason": "Unhealthy",
            "message": "Readiness probe failed: HTTP probe failed with statuscode: 404",
            "count": 5,
            "firstTimestamp": "2026-11-27T03:00:00Z",
            "lastTimestamp": "2026-11-27T03:00:12Z",
        },
        {"reason": "Pulled", "message": "Container image already present"},
    ]
    assert rollout.readiness_reason(events, "/healthz", 8080) == (
        "readiness probe failed: HTTP 404 on /healthz (5 times in 12s)"
    )


def test_readiness_reason_for_a_closed_port() -> None:
    """A refused connection names the port the app should listen on."""
    events = [
        {
            "reason": "Unhealthy",
            "message": "Readiness probe failed: dial tcp 10.0.0.5:8080: connection refused",
            "eventTime": "2026-11-27T03:00:00.000000Z",
        }
    ]
    reason = rollout.readiness_reason(events, None, 8080)
    assert reason == "readiness probe failed: connection refused on port 8080 (once)"


def test_timeout_reason_prefers_probe_evidence_then_scheduling() -> None:
    """The timeout reason says why the pod was not ready, not merely that it was not."""
    unhealthy = [{"reason": "Unhealthy", "message": "Readiness probe failed: statuscode: 500"}]
    assert rollout.timeout_reason(
        [_pod()], unhealthy, None, timeout=60, health_path="/h", port=8080
    ) == ("readiness probe failed: HTTP 500 on /h (once); not ready within 60s")
    pending = _pod(
        conditions=[
            {"type": "PodScheduled", "status": "False", "message": "0/1 nodes: Insufficient memory"}
        ]
    )
    assert rollout.timeout_reason([pending], [], None, timeout=30, health_path=None, port=8080) == (
        "pod cannot be scheduled: 0/1 nodes: Insufficient memory; not ready within 30s"
    )
    assert "no pod" in rollout.timeout_reason([], [], None, timeout=5, health_path=None, port=1)


def test_assess_follows_kubectl_rollout_status() -> None:
    """Done only when observed, updated, available and total replicas all agree."""
    ready = [_pod(ready=True)]
    done = _deployment(replicas=1, updatedReplicas=1, availableReplicas=1)
    assert rollout.assess(done, ready, 2).done
    surge = _deployment(replicas=2, updatedReplicas=1, availableReplicas=2)
    assert not rollout.assess(surge, ready, 2).done
    stale = {**done, "metadata": {"name": "blog", "generation": 3}}
    assert not rollout.assess(stale, ready, 2).done
    assert rollout.assess(done, ready, 2).ready == 1


def test_assess_fails_when_another_release_took_over() -> None:
    """A Deployment changed to another release under us is a failure, not a wait."""
    progress = rollout.assess(_deployment(version=5), [], 2)
    assert progress.failure is not None
    assert "v5" in progress.failure


def test_assess_reports_progress_deadline() -> None:
    """Kubernetes' own ProgressDeadlineExceeded ends the rollout."""
    cond = {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
    progress = rollout.assess(_deployment(conditions=[cond]), [], 2)
    assert progress.failure == "Kubernetes gave up: too slow"


def test_terminating_pods_are_ignored() -> None:
    """A pod being deleted neither fails nor counts toward a rollout."""
    pod = _pod(containerStatuses=[{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}])
    pod["metadata"]["deletionTimestamp"] = "2026-11-27T03:00:00Z"
    assert rollout.assess(None, [pod], 2).failure is None


def test_new_replicaset_is_found_by_revision_and_owner() -> None:
    """The new pods are those of the ReplicaSet at the Deployment's revision, by template hash."""
    dep = {"metadata": {"uid": "d1", "annotations": {rollout.REVISION: "3"}}}

    def rs(uid: str, revision: str, pod_hash: str) -> dict[str, Any]:
        return {
            "metadata": {
                "ownerReferences": [{"uid": uid}],
                "annotations": {rollout.REVISION: revision},
                "labels": {rollout.HASH_LABEL: pod_hash},
            }
        }

    sets = [rs("d1", "2", "old"), rs("other", "3", "foreign"), rs("d1", "3", "new")]
    assert rollout.new_replicaset_hash(dep, sets) == "new"
    assert rollout.new_replicaset_hash({"metadata": {"uid": "d1"}}, sets) is None
    pods = [
        {"metadata": {"name": "a", "labels": {rollout.HASH_LABEL: "old"}}},
        {"metadata": {"name": "b", "labels": {rollout.HASH_LABEL: "new"}}},
    ]
    assert [p["metadata"]["name"] for p in rollout.of_replicaset(pods, "new")] == ["b"]
    assert len(rollout.of_replicaset(pods, None)) == 2
