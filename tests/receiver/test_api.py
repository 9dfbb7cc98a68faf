"""The JSON API: auth, listings, job logs."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from homeport import apps
from homeport.records import joblog, jobs
from homeport.records.joblog import JobLog
from tests.support.gitwork import WorkTree
from tests.support.records import queued_job
from tests.support.servers import TOKEN, WEBHOOK_SECRET, Homeport
from tests.support.webhooks import rollback_headers


def test_api_needs_the_token_and_healthz_does_not(homeport: Homeport) -> None:
    """No token or a wrong one is 401 on every /api route; /healthz answers anyone."""
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        for path in ("/api/apps", "/api/apps/blog/jobs", "/api/apps/blog/jobs/x/log"):
            response = httpx.get(homeport.url + path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert TOKEN not in response.text
    assert httpx.get(homeport.url + "/healthz").json() == {"ok": True}


def test_unknown_and_invalid_apps(homeport: Homeport) -> None:
    """An unknown app is 404, an invalid name 400, an unknown job 404."""
    assert homeport.api("GET", "/api/apps/nope/jobs").status_code == 404
    assert homeport.api("GET", "/api/apps/No.Pe/jobs").status_code == 400
    assert homeport.api("GET", "/api/apps/" + "a" * 41 + "/jobs").status_code == 400


def test_job_log_is_kept_and_followable(homeport: Homeport, work: WorkTree) -> None:
    """A finished job's log reads back whole; ?follow=1 ends when the job has ended."""
    commit = work.commit("first", **{"a.txt": "a"})
    pushed = work.push(homeport.remote("blog"))
    assert pushed.returncode == 0, pushed.stderr
    job = homeport.api("GET", "/api/apps/blog/jobs").json()["jobs"][0]
    assert homeport.api("GET", f"/api/apps/blog/jobs/{job['id']}").json()["commit"] == commit
    log = homeport.api("GET", f"/api/apps/blog/jobs/{job['id']}/log").text
    assert f"-----> Building blog@{commit[:7]}" in log
    followed = homeport.api("GET", f"/api/apps/blog/jobs/{job['id']}/log?follow=1").text
    assert followed == log
    assert homeport.api("GET", "/api/apps/blog/jobs/nope/log").status_code == 404


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_only_the_rollback_route_takes_a_signature(receiver: Homeport) -> None:
    """A signature opens POST /api/apps/{app}/rollback alone; elsewhere it is 401 for any app."""
    apps.create_repo(receiver.data_dir, "blog", "main")
    signed = {"X-Homeport-Signature-256": _sign(b"")}
    answers = []
    for app in ("blog", "nosuchapp"):
        for method, path in (
            ("GET", f"/api/apps/{app}/jobs/rollback"),
            ("GET", f"/api/apps/{app}/jobs/rollback/log"),
            ("GET", f"/api/apps/{app}/rollback"),
            ("POST", f"/api/apps/{app}/config/rollback"),
            ("POST", f"/api/apps/{app}/rollback/"),
            ("POST", f"/api/apps/{app}//rollback"),
        ):
            response = httpx.request(method, receiver.url + path, headers=signed)
            assert response.status_code == 401, (method, path, response.text)
            answers.append(response.json())
    # The same answer whether the app exists or not.
    assert all(answer == answers[0] for answer in answers)
    assert "does not exist" not in str(answers[0])
    # The rollback route itself still takes a signature (and then checks the app).
    path = "/api/apps/blog/rollback"
    response = httpx.post(receiver.url + path, content=b"", headers=rollback_headers(path, b""))
    assert response.status_code == 404
    assert "app 'blog' has no earlier release" in response.json()["error"]


def test_bad_rollback_bodies_are_400(receiver: Homeport) -> None:
    """Out-of-range versions and deeply nested bodies are 400 with a message, never 500."""
    apps.create_repo(receiver.data_dir, "blog", "main")
    for body in (
        b'{"version": 18446744073709551616}',
        b'{"version": 9223372036854775808}',
        b'{"version": 0}',
        b"[" * 3000,
        b'{"version": ' * 300,
        b'{"a":' * 600 + b"1" + b"}" * 600,
    ):
        response = receiver.api("POST", "/api/apps/blog/rollback", content=body)
        assert response.status_code == 400, (body[:40], response.text)
        assert response.json()["error"]


def test_bad_config_bodies_are_400(receiver: Homeport) -> None:
    """The config route refuses deeply nested and non-JSON bodies before anything else."""
    for body in (b"[" * 3000, b'{"set": ' * 3000, b"\xff\xfe"):
        response = receiver.api("POST", "/api/apps/blog/config", content=body)
        assert response.status_code == 400, (body[:40], response.text)
        assert "send {" in response.json()["error"]


def _queued_job(data_dir: Path, app: str = "blog") -> jobs.Job:
    apps.create_repo(data_dir, app, "main")
    return queued_job(data_dir, app)


def test_a_capped_log_reads_back_its_start_and_end(receiver: Homeport) -> None:
    """A log past its cap reads back as head, a note on what was left out, and tail."""
    job = _queued_job(receiver.data_dir)
    out = JobLog(joblog.log_path(receiver.data_dir, "blog", job.id), max_bytes=64 * 1024)
    for i in range(20_000):
        out.write(f"line {i}")
    jobs.finish(receiver.data_dir, job.id, jobs.SUCCEEDED, "")
    with httpx.stream(
        "GET",
        f"{receiver.url}/api/apps/blog/jobs/{job.id}/log",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not read whole
        text = response.read().decode()
    lines = text.splitlines()
    assert lines[0] == "line 0" and lines[-1] == "line 19999"
    assert sum("of output left out here" in line for line in lines) == 1
    followed = receiver.api("GET", f"/api/apps/blog/jobs/{job.id}/log?follow=1").text
    assert followed == text


def test_follow_ends_after_the_job_timeout(start_receiver: Callable[..., Homeport]) -> None:
    """?follow=1 on a job that never ends stops after the job timeout plus a margin."""
    receiver = start_receiver(HOMEPORT_JOB_TIMEOUT="1")
    job = _queued_job(receiver.data_dir)
    JobLog(joblog.log_path(receiver.data_dir, "blog", job.id)).write("-----> queued")
    start = time.monotonic()
    text = receiver.api("GET", f"/api/apps/blog/jobs/{job.id}/log?follow=1").text
    assert 6 <= time.monotonic() - start < 20
    lines = text.splitlines()
    assert lines[0] == "-----> queued"
    assert lines[-1].startswith("-----> stopped waiting after 6s (HOMEPORT_JOB_TIMEOUT")
    assert jobs.get(receiver.data_dir, job.id).status == jobs.QUEUED
