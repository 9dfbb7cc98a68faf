"""The Kubernetes objects of processes and cron entries, and how cron runs are read."""

from __future__ import annotations

from typing import Any

import pytest

from homeport.deployer import cron, objects, processes
from homeport.spec import CronSpec, ProcessSpec, RunSpec, Volume

IMAGE = "127.0.0.1:5000/blog@sha256:" + "a" * 64
SPEC = RunSpec(
    health_timeout=30,
    processes={
        "worker": ProcessSpec(
            command=("/app/worker", "--queue", "mail"), replicas=2, memory="128Mi"
        )
    },
    cron={"backup": CronSpec(schedule="0 3 * * *", command=("/app/backup",), timeout=600)},
)


def test_process_deployment_runs_the_command_from_the_release_without_web_labels() -> None:
    """The Deployment runs the command as args, from the release's image and Secret, and its
    pods never carry the label the web Service selects."""
    dep = processes.deployment("blog", 4, IMAGE, SPEC, "worker", "blog-v4")
    assert dep["metadata"]["name"] == "blog-worker"
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["minReadySeconds"] == processes.STABLE_SECONDS
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    template = dep["spec"]["template"]
    assert template["metadata"]["labels"] == {
        processes.PART_OF: "blog",
        objects.MANAGED_LABEL: "homeport",
        processes.PROCESS_KEY: "worker",
        objects.RELEASE_KEY: "4",
    }
    assert objects.NAME_LABEL not in template["metadata"]["labels"]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector == {processes.PART_OF: "blog", processes.PROCESS_KEY: "worker"}
    (container,) = template["spec"]["containers"]
    assert container["args"] == ["/app/worker", "--queue", "mail"]
    assert "command" not in container and "readinessProbe" not in container
    assert "ports" not in container
    assert container["envFrom"] == [{"secretRef": {"name": "blog-v4"}}]
    assert container["resources"]["limits"] == {"memory": "128Mi"}
    assert template["spec"]["automountServiceAccountToken"] is False
    assert objects.template_release(dep) == 4
    assert processes.template_parts(dep) == ({IMAGE}, {"blog-v4"})


def test_process_deployment_refuses_a_tag_and_mounts_only_its_volumes() -> None:
    """Images go by digest; a process mounts the [volumes] it names, no others."""
    with pytest.raises(ValueError, match="not pinned by digest"):
        processes.deployment("blog", 1, "127.0.0.1:5000/blog:latest", SPEC, "worker", "s")
    with_volume = RunSpec(
        processes={"worker": ProcessSpec(command=("x",), volumes=("data",))},
        volumes=(Volume("data", "/data", "1Gi"), Volume("cache", "/cache", "1Gi")),
    )
    pod = processes.deployment("blog", 1, IMAGE, with_volume, "worker", "s")["spec"]["template"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]]
    assert claims == ["blog-data"]
    (container,) = pod["spec"]["containers"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/data"]


def test_cronjob_has_the_schedule_forbids_overlap_and_runs_the_release() -> None:
    """The CronJob runs the command from the release's image and Secret, never twice at once,
    stopped after its timeout and not retried."""
    body = cron.cronjob("blog", 4, IMAGE, SPEC, "backup", "blog-v4")
    assert body["metadata"]["name"] == "blog-backup"
    assert body["spec"]["schedule"] == "0 3 * * *"
    assert body["spec"]["concurrencyPolicy"] == "Forbid"
    job = body["spec"]["jobTemplate"]["spec"]
    assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (0, 600)
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["args"] == ["/app/backup"]
    assert job["template"]["metadata"]["labels"][cron.CRON_KEY] == "backup"
    assert objects.NAME_LABEL not in job["template"]["metadata"]["labels"]
    assert cron.template_parts(body) == ({IMAGE}, {"blog-v4"})
    untimed = RunSpec(cron={"backup": CronSpec(schedule="@daily", command=("x",))})
    job = cron.cronjob("blog", 1, IMAGE, untimed, "backup", "s")["spec"]["jobTemplate"]["spec"]
    assert "activeDeadlineSeconds" not in job


def _job(name: str, entry: str, started: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {cron.CRON_KEY: entry},
            "creationTimestamp": started,
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"}
            if "-run-" in name
            else {},
        },
        "status": {"startTime": started, **status},
    }


def test_last_runs_are_the_newest_job_of_each_entry_with_its_outcome() -> None:
    """The newest Job of each entry tells its status; a failed one says why."""
    failed = {
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline",
                "lastTransitionTime": "2026-01-02T03:10:00Z",
            }
        ]
    }
    done = {
        "conditions": [{"type": "Complete", "status": "True"}],
        "completionTime": "2026-01-02T04:00:05Z",
    }
    jobs = [
        _job("blog-backup-29000000", "backup", "2026-01-02T03:00:00Z", **failed),
        _job("blog-backup-run-x7k2p", "backup", "2026-01-02T04:00:00Z", **done),
        _job("blog-tick-29000001", "tick", "2026-01-02T04:05:00Z", active=1),
        _job("blog-tick-29000000", "tick", "2026-01-02T04:00:00Z", **failed),
    ]
    runs = cron.last_runs(jobs)
    assert runs["backup"] == {
        "job": "blog-backup-run-x7k2p",
        "status": "succeeded",
        "reason": "",
        "started_at": "2026-01-02T04:00:00Z",
        "ended_at": "2026-01-02T04:00:05Z",
        "manual": True,
    }
    assert (runs["tick"]["status"], runs["tick"]["manual"]) == ("running", False)
    assert cron.outcome(jobs[0])["reason"] == (
        "DeadlineExceeded: Job was active longer than specified deadline"
    )
