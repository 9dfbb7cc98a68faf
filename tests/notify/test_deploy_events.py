"""Notifications of real deploys: a live release and a rolled-back one reach a signed JSON
webhook and an ntfy endpoint, while a dead target delays nothing; /metrics counts them."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from homeport.notify import deliver
from tests.support.cluster import KUBECONFIG, Kube
from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport
from tests.support.targets import Blackhole, Ntfy, Recorder, verify
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
LOCAL_BASE = '[build]\nargs = { BASE = "homeport-base:busybox" }\n'


def _blog(path: Path) -> WorkTree:
    work = WorkTree(path, dockerfile=None)
    shutil.copytree(ROOT / "examples" / "blog", path, dirs_exist_ok=True)
    manifest = (path / "homeport.toml").read_text().replace("timeout = 60", "timeout = 10")
    (path / "homeport.toml").write_text(LOCAL_BASE + manifest)
    return work


def _metric(hp: Homeport, name: str, **labels: str) -> float:
    text = hp.api("GET", "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_live_and_rolled_back_releases_are_announced(
    tmp_path: Path, redis_url: str, kube: Kube, docker_services: str, apps_namespace: str
) -> None:
    """release.live then release.failed (rolled back to v1) arrive signed and on ntfy; the
    push is not held up by a target that never answers."""
    sink, ntfy, hole = Recorder(), Ntfy(), Blackhole()
    app = f"note-{uuid.uuid4().hex[:6]}"
    hp = Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        extra_env={
            "HOMEPORT_KUBECONFIG": str(KUBECONFIG),
            "HOMEPORT_NAMESPACE": apps_namespace,
            "HOMEPORT_NOTIFY_WEBHOOK": f"{sink.url}/homeport/events",
            "HOMEPORT_NOTIFY": (
                f"ntfy://127.0.0.1:{ntfy.port}/deploys ntfy://127.0.0.1:{hole.port}/dead"
            ),
        },
    ).start()
    try:
        work = _blog(tmp_path / "blog")
        first = work.commit("first post")
        pushed = work.push(hp.remote(app))
        assert pushed.returncode == 0, pushed.stderr
        job = hp.api("GET", f"/api/apps/{app}/jobs").json()["jobs"][0]

        def log() -> str:
            return str(hp.api("GET", f"/api/apps/{app}/jobs/{job['id']}/log").text)

        # The deploy ended while the dead target still held its sender.
        assert "notified release.live" not in log()
        got = wait_until(lambda: sink.received, timeout=15, what="release.live")[0]
        assert verify(got) and got.path == "/homeport/events"
        live = got.json()
        assert {k: live[k] for k in ("event", "app", "version", "commit", "cause", "job")} == {
            "event": "release.live",
            "app": app,
            "version": 1,
            "commit": first,
            "cause": "push",
            "job": job["id"],
        }
        assert live["url"] == "http://blog.home.lan/"
        released = hp.api("GET", f"/api/apps/{app}/releases").json()["releases"][0]
        # Recorded live, then received: well within a second here.
        assert 0 <= got.at - released["updated_at"] < 5
        message = wait_until(ntfy.messages, timeout=30, what="the ntfy message")[0]
        assert message["topic"] == "deploys" and message["title"] == f"{app} v1 is live"
        assert hole.held

        (work.path / "www" / "healthz").unlink()
        work.commit("break healthz")
        broken = work.push(hp.remote(app))
        assert broken.returncode != 0 and "rolled back to v1" in broken.stderr
        failed = wait_until(
            lambda: [r for r in sink.received if r.json()["event"] == "release.failed"],
            timeout=30,
            what="release.failed",
        )[0]
        assert verify(failed)
        data = failed.json()
        assert (data["version"], data["rolled_back_to"]) == (2, 1)
        assert "readiness probe failed" in data["reason"]

        line = wait_until(
            lambda: [x for x in log().splitlines() if "notified release.live" in x],
            timeout=deliver.DEADLINE,
            what="the outcome line of the first job",
            interval=1,
        )[0]
        assert f"webhook http://127.0.0.1:{sink.port}/… ok" in line
        assert "ntfy://… ok" in line and "ntfy://… failed after 3 tries" in line
        assert str(hole.port) not in line and "deploys" not in line

        assert _metric(hp, "homeport_deploys_total", app=app, outcome="succeeded") == 1
        assert _metric(hp, "homeport_deploys_total", app=app, outcome="failed") == 1
        assert _metric(hp, "homeport_rollbacks_total", cause="automatic") == 1
        count = "homeport_deploy_stage_duration_seconds_count"
        assert _metric(hp, count, stage="build") == 2
        assert _metric(hp, count, stage="rollout") == 2
        assert _metric(hp, "homeport_last_live_release_timestamp_seconds", app=app, version="1")
        assert time.time() - released["updated_at"] < 600
    finally:
        hp.stop()
        for target in (sink, ntfy, hole):
            target.close()


CRON_MANIFEST = """\
[healthcheck]
timeout = 30

[cron.nightly]
schedule = "0 3 * * *"
command = ["sh", "-c", "echo disk full; exit 4"]
timeout = 60
"""


def test_a_failed_cron_run_is_announced_once(
    tmp_path: Path, redis_url: str, kube: Kube, docker_services: str, apps_namespace: str
) -> None:
    """A scheduled run that fails sends cron.failed, signed, naming the entry; each failed run
    is told once, whichever worker sees it first."""
    sink = Recorder()
    app = f"cronfail-{uuid.uuid4().hex[:6]}"
    hp = Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        extra_env={
            "HOMEPORT_KUBECONFIG": str(KUBECONFIG),
            "HOMEPORT_NAMESPACE": apps_namespace,
            "HOMEPORT_NOTIFY_WEBHOOK": f"{sink.url}/events",
        },
    ).start()

    def failures() -> list[dict[str, object]]:
        got = [r.json() for r in sink.received if verify(r)]
        return [e for e in got if e["event"] == "cron.failed"]

    try:
        work = WorkTree(tmp_path / "work")
        commit = work.commit("cron", **{"index.html": "hi\n", "homeport.toml": CRON_MANIFEST})
        pushed = work.push(hp.remote(app))
        assert pushed.returncode == 0, pushed.stderr
        runs = []
        for number in (1, 2):
            started = hp.api("POST", f"/api/apps/{app}/cron/nightly/runs", json={})
            assert started.status_code == 202, started.text
            runs.append(started.json()["job"])
            wait_until(lambda n=number: len(failures()) >= n, timeout=180, what="cron.failed")
        told = failures()
        assert [e["job"] for e in told] == runs  # each run once, in order
        assert {e["app"] for e in told} == {app} and {e["commit"] for e in told} == {commit}
        assert "cron nightly failed" in str(told[0]["reason"])
    finally:
        hp.stop()
        sink.close()
