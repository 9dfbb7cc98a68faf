"""Processes and cron from a real push, `homeport cron` and its API, refusals at push time."""

from __future__ import annotations

from typing import Any

from tests.support.cli import run_cli as _cli
from tests.support.cluster import Kube
from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport
from tests.support.waiting import wait_until

APP = "clock"
MANIFEST = """\
[healthcheck]
timeout = 30

[processes.worker]
command = ["sh", "-c", "echo worker of $GREETING up; exec sleep 3600"]

[cron.tick]
schedule = "*/30 * * * *"
command = ["sh", "-c", "echo tick from $GREETING"]
timeout = 60

[env]
GREETING = "a-greeting"
"""


def _last_run(hp: Homeport) -> dict[str, Any] | None:
    (entry,) = hp.api("GET", f"/api/apps/{APP}/cron").json()["cron"]
    last: dict[str, Any] | None = entry["last_run"]
    return last if last and last["status"] in ("succeeded", "failed") else None


def test_a_push_runs_processes_and_cron_and_a_run_started_now_completes(
    homeport: Homeport, work: WorkTree, kube: Kube, apps_namespace: str
) -> None:
    """The worker runs, the CronJob has the schedule and the live image, `homeport cron APP
    run NAME` starts a run that completes and `homeport cron APP` shows it."""
    work.commit("clock", **{"index.html": "clock\n", "homeport.toml": MANIFEST})
    pushed = work.push(homeport.remote(APP))
    assert pushed.returncode == 0, pushed.stderr
    assert "remote:        worker: running for 5s without a restart" in pushed.stderr
    assert f"remote: -----> {APP} v1 is live" in pushed.stderr

    (live,) = homeport.api("GET", f"/api/apps/{APP}/releases").json()["releases"]
    worker = kube.apps.read_namespaced_deployment(f"{APP}-worker", apps_namespace)
    assert worker.spec.template.spec.containers[0].image == live["image"]
    assert worker.status.available_replicas == 1
    from kubernetes import client

    cronjob = client.BatchV1Api(kube.api).read_namespaced_cron_job(f"{APP}-tick", apps_namespace)
    assert cronjob.spec.schedule == "*/30 * * * *"
    assert cronjob.spec.concurrency_policy == "Forbid"
    pod = cronjob.spec.job_template.spec.template.spec
    assert pod.containers[0].image == live["image"]

    listed = _cli(homeport, "cron", APP)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[:2] == ["NAME", "SCHEDULE"]
    assert row.startswith("tick  */30 * * * *  never")

    started = _cli(homeport, "cron", "run", APP, "tick")
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith(f"-----> Started tick of {APP}: job {APP}-tick-run-")
    job = started.stdout.split("job ")[1].strip()
    last = wait_until(lambda: _last_run(homeport), timeout=90, what="the cron run to end")
    assert (last["job"], last["status"]) == (job, "succeeded")
    shown = _cli(homeport, "cron", APP)
    assert "succeeded" in shown.stdout and job in shown.stdout
    (logged,) = kube.core.list_namespaced_pod(
        apps_namespace, label_selector=f"batch.kubernetes.io/job-name={job}"
    ).items
    output = kube.core.read_namespaced_pod_log(logged.metadata.name, apps_namespace)
    assert output == "tick from a-greeting\n"

    unknown = homeport.api("POST", f"/api/apps/{APP}/cron/nope/runs")
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith(f"{APP} v1 has no cron 'nope' (its cron entries:")
    missing = _cli(homeport, "cron", "run", APP, "nope")
    assert missing.returncode == 1 and "has no cron 'nope'" in missing.stderr
    assert _cli(homeport, "cron", "run", APP).returncode == 2
    assert homeport.api("GET", "/api/apps/nothere/cron").status_code == 404


def test_bad_schedules_and_commands_are_refused_at_push_time(
    homeport: Homeport, work: WorkTree
) -> None:
    """A schedule Kubernetes would refuse or a command that is not a list fails the push,
    naming the key, before anything is built."""
    bad_schedule = MANIFEST.replace('"*/30 * * * *"', '"61 * * * *"')
    work.commit("bad schedule", **{"index.html": "x\n", "homeport.toml": bad_schedule})
    pushed = work.push(homeport.remote(APP))
    assert pushed.returncode != 0
    assert 'cron.tick.schedule = "61 * * * *" is not allowed: minute 61 is out of range' in (
        pushed.stderr
    )
    assert "Building" not in pushed.stderr
    bad_command = MANIFEST.replace(
        'command = ["sh", "-c", "echo worker of $GREETING up; exec sleep 3600"]',
        'command = "sleep 3600"',
    )
    work.commit("bad command", **{"homeport.toml": bad_command})
    pushed = work.push(homeport.remote(APP))
    assert pushed.returncode != 0
    assert 'processes.worker.command = "sleep 3600" is not allowed: use a non-empty list' in (
        pushed.stderr
    )
