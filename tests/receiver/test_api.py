"""The JSON API: auth, listings, job logs."""

from __future__ import annotations

import httpx

from tests.support.gitwork import WorkTree
from tests.support.servers import TOKEN, Homeport


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
