"""Replayed webhook deliveries: known by delivery id and by body, kept for 30 days."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx

from homeport.records import db
from tests.support.servers import GITLAB_TOKEN, Homeport
from tests.support.webhooks import github, jobs_of, payload, sign

DAY = 24 * 3600


def _body(after: str = "a" * 40, **kwargs: str) -> bytes:
    return json.dumps(payload("http://127.0.0.1:9/blog.git", after, **kwargs)).encode()


def test_same_body_with_another_id_or_none_is_a_duplicate(receiver: Homeport) -> None:
    """A signed body deploys once: a new delivery id, no id or ?app= make no second job."""
    body = _body()
    first = github(receiver, body, delivery="d-1")
    assert first.status_code == 202, first.text
    job = first.json()["job"]
    for again in (
        github(receiver, body, delivery="d-2"),
        github(receiver, body, delivery=None),
        github(receiver, body, delivery="d-3", headers={"X-GitHub-Hook-ID": "99"}),
        github(receiver, body, delivery="d-4", query="?app=other"),
    ):
        assert again.status_code == 200, again.text
        assert again.json() == {"duplicate": True, "job": job}
    assert [j["id"] for j in jobs_of(receiver)] == [job]
    assert jobs_of(receiver, "other") == []


def test_same_body_to_another_provider_is_a_duplicate(receiver: Homeport) -> None:
    """A GitHub delivery re-signed as Gitea's bare hex is still the same body: no new job."""
    body = _body()
    assert github(receiver, body).status_code == 202
    replayed = httpx.post(
        receiver.url + "/hooks/gitea",
        content=body,
        headers={
            "X-Gitea-Event": "push",
            "X-Gitea-Delivery": "g-1",
            "X-Gitea-Signature": sign(body)[len("sha256=") :],
        },
    )
    assert replayed.status_code == 200 and replayed.json()["duplicate"] is True
    assert len(jobs_of(receiver)) == 1


def test_new_body_with_the_same_id_is_a_duplicate(receiver: Homeport) -> None:
    """The delivery id alone also marks a redelivery."""
    assert github(receiver, _body("a" * 40), delivery="same").status_code == 202
    again = github(receiver, _body("b" * 40), delivery="same")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(jobs_of(receiver)) == 1


def test_deliveries_without_their_id_header_are_refused(receiver: Homeport) -> None:
    """A new delivery without the provider's delivery header is 400 naming that header."""
    body = _body()
    response = github(receiver, body, delivery=None)
    assert response.status_code == 400
    assert "X-GitHub-Delivery" in response.json()["error"]
    gitea = httpx.post(
        receiver.url + "/hooks/gitea",
        content=body,
        headers={"X-Gitea-Event": "push", "X-Gitea-Signature": sign(body)[7:]},
    )
    assert gitea.status_code == 400
    assert "X-Gitea-Delivery" in gitea.json()["error"]
    gitlab = httpx.post(
        receiver.url + "/hooks/gitlab",
        content=b"{}",
        headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": GITLAB_TOKEN},
    )
    assert gitlab.status_code == 400
    assert "Idempotency-Key or X-Gitlab-Event-UUID" in gitlab.json()["error"]
    assert jobs_of(receiver) == []


def test_deliveries_are_kept_30_days_then_pruned(receiver: Homeport) -> None:
    """A 29-day-old delivery still counts; older rows are deleted by the next delivery."""
    recent, old = _body("a" * 40), _body("b" * 40)
    recent_job = github(receiver, recent, delivery="recent").json()["job"]
    old_job = github(receiver, old, delivery="old").json()["job"]
    path = db.path_in(receiver.data_dir)
    with sqlite3.connect(path) as conn:
        for job, age in ((recent_job, 29 * DAY), (old_job, 31 * DAY)):
            conn.execute(
                "UPDATE deliveries SET received_at = ? WHERE job_id = ?",
                (time.time() - age, job),
            )
    assert github(receiver, recent, delivery="recent").json()["duplicate"] is True
    # The next accepted delivery prunes what is older than 30 days.
    assert github(receiver, _body("c" * 40), delivery="new").status_code == 202
    with sqlite3.connect(path) as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM deliveries WHERE id LIKE 'g%'")}
        bodies = {
            row[0] for row in conn.execute("SELECT job_id FROM deliveries WHERE id LIKE 's%'")
        }
    assert ids == {"github:recent", "github:new"}
    assert old_job not in bodies and recent_job in bodies and len(bodies) == 2


def test_an_existing_database_gains_the_new_tables(tmp_path: Path, redis_url: str) -> None:
    """A data dir from before replay protection keeps its rows and takes webhooks at once."""
    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(db.path_in(data)) as conn:
        conn.executescript(
            """
            CREATE TABLE deliveries (id TEXT PRIMARY KEY, job_id TEXT, received_at REAL NOT NULL);
            INSERT INTO deliveries VALUES ('github:d-1', 'job-1', 0);
            """
        )
    hp = Homeport(data_dir=data, redis_url=redis_url).start(workers=0)
    try:
        again = github(hp, _body(), delivery="d-1")
        assert again.json() == {"duplicate": True, "job": "job-1"}
        assert github(hp, _body(), delivery="d-2").status_code == 202
    finally:
        hp.stop()
