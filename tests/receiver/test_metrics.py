"""/metrics: Prometheus text computed from the durable records, matching the API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from homeport import apps, lifecycle
from homeport.records import jobs, releases
from homeport.settings import Settings
from tests.support.servers import Homeport
from tests.support.waiting import wait_until


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _job(hp: Homeport, app: str, kind: str, source: str, status: str) -> jobs.Job:
    job = jobs.create(
        hp.data_dir,
        app=app,
        kind=kind,
        ref="refs/heads/main",
        commit=uuid.uuid4().hex + "0" * 8,
        old_sha="0" * 40,
        source=source,
    )
    if status != jobs.QUEUED:
        jobs.finish(hp.data_dir, job.id, status)
    return job


def _records(hp: Homeport, app: str) -> None:
    apps.create_repo(hp.data_dir, app, "main")
    settings = Settings(data_dir=hp.data_dir)
    for status in (jobs.SUCCEEDED, jobs.SUCCEEDED, jobs.FAILED, jobs.SUPERSEDED, jobs.QUEUED):
        job = _job(hp, app, "deploy", "push", status)
        with lifecycle.stage(settings, job, "build"):
            pass
    _job(hp, app, "rollback", "hook", jobs.SUCCEEDED)
    _job(hp, app, "rollback", "api", jobs.FAILED)
    release = releases.create(
        hp.data_dir, app=app, commit="a" * 40, image="127.0.0.1:5000/x@sha256:00", config={}
    )
    releases.mark_live(hp.data_dir, app, release.version)


def test_metrics_match_the_api(start_receiver: Callable[..., Homeport]) -> None:
    """Deploys by outcome, jobs by state, rollbacks by cause, last live release and stage
    timings are what the API shows; the build cache size comes from the engine."""
    hp = start_receiver()
    app = f"metrics-{uuid.uuid4().hex[:6]}"
    _records(hp, app)
    listed: list[dict[str, Any]] = hp.api("GET", f"/api/apps/{app}/jobs").json()["jobs"]
    live = hp.api("GET", f"/api/apps/{app}/releases").json()["releases"][0]

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        answer = hp.api("GET", "/metrics")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        found = _samples(answer.text)
        return found if ("homeport_build_cache_bytes", ()) in found else None

    found = wait_until(scrape, timeout=90, what="the build cache size", interval=1)
    for outcome in ("succeeded", "failed", "superseded"):
        expected = sum(1 for j in listed if j["kind"] == "deploy" and j["status"] == outcome)
        key = ("homeport_deploys_total", (("app", app), ("outcome", outcome)))
        assert found[key] == expected
    for state in ("queued", "running", "succeeded", "failed", "superseded"):
        expected = sum(1 for j in listed if j["status"] == state)
        assert found[("homeport_jobs", (("state", state),))] == expected
    assert found[("homeport_rollbacks_total", (("cause", "hook"),))] == 1
    assert ("homeport_rollbacks_total", (("cause", "api"),)) not in found  # it failed
    assert found[("homeport_rollbacks_total", (("cause", "automatic"),))] == 0
    key = ("homeport_last_live_release_timestamp_seconds", (("app", app), ("version", "1")))
    assert found[key] == live["updated_at"]
    builds = ("homeport_deploy_stage_duration_seconds_count", (("stage", "build"),))
    assert found[builds] == 5
    inf = ("homeport_deploy_stage_duration_seconds_bucket", (("le", "+Inf"), ("stage", "build")))
    assert found[inf] == 5
    assert found[("homeport_docker_up", ())] == 1
    assert found[("homeport_build_cache_bytes", ())] >= 0


def test_metrics_need_the_token_unless_public(start_receiver: Callable[..., Homeport]) -> None:
    """Without the token /metrics is 401, unless HOMEPORT_METRICS_PUBLIC=true."""
    closed = start_receiver()
    assert httpx.get(closed.url + "/metrics").status_code == 401
    wrong = httpx.get(closed.url + "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    public = start_receiver(HOMEPORT_METRICS_PUBLIC="true")
    answer = httpx.get(public.url + "/metrics", timeout=30)
    assert answer.status_code == 200
    assert "homeport_jobs" in {f.name for f in text_string_to_metric_families(answer.text)}
