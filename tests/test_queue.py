"""Per-app scheduling on real Redis and the real database."""

from __future__ import annotations

from pathlib import Path

import redis

from homeport import db, jobs, queue
from homeport.config import Settings


def _job(data_dir: Path, app: str, commit: str) -> jobs.Job:
    return jobs.create(
        data_dir,
        app=app,
        kind="deploy",
        ref="refs/heads/main",
        commit=commit,
        old_sha="0" * 40,
        source="push",
    )


def test_claim_runs_the_newest_and_supersedes_the_rest(tmp_path: Path, redis_url: str) -> None:
    """Three queued jobs: the newest runs, the two older ones end superseded."""
    settings = Settings(data_dir=tmp_path, redis_url=redis_url)
    db.init(tmp_path)
    conn = redis.Redis.from_url(redis_url)
    a, b, c = (_job(tmp_path, "blog", x * 40) for x in "abc")
    other = _job(tmp_path, "api", "d" * 40)
    running, superseded = queue.claim(settings, conn, "blog")
    assert running is not None and running.id == c.id and running.status == jobs.RUNNING
    assert {j.id for j in superseded} == {a.id, b.id}
    assert jobs.get(tmp_path, a.id).reason == f"superseded by {'c' * 12}"
    assert jobs.get(tmp_path, other.id).status == jobs.QUEUED


def test_submit_queues_one_runner_per_app(tmp_path: Path, redis_url: str) -> None:
    """Submitting twice for one app queues one runner; another app gets its own."""
    settings = Settings(data_dir=tmp_path, redis_url=redis_url)
    db.init(tmp_path)
    conn = redis.Redis.from_url(redis_url)
    _job(tmp_path, "blog", "a" * 40)
    queue.submit(settings, conn, "blog")
    _job(tmp_path, "blog", "b" * 40)
    queue.submit(settings, conn, "blog")
    _job(tmp_path, "api", "c" * 40)
    queue.submit(settings, conn, "api")
    assert conn.llen(f"rq:queue:{queue.QUEUE_NAME}") == 2


def test_recover_fails_orphans_and_restarts_the_queue(tmp_path: Path, redis_url: str) -> None:
    """A job left running by a dead worker fails with a reason; queued work runs again."""
    settings = Settings(data_dir=tmp_path, redis_url=redis_url)
    db.init(tmp_path)
    conn = redis.Redis.from_url(redis_url)
    _job(tmp_path, "blog", "a" * 40)
    running, _ = queue.claim(settings, conn, "blog")
    assert running is not None
    waiting = _job(tmp_path, "blog", "b" * 40)
    # No runner and no heartbeat: as after kill -9 of the worker, or Redis losing its data.
    queue.recover(settings, conn)
    orphan = jobs.get(tmp_path, running.id)
    assert orphan.status == jobs.FAILED and "worker stopped" in orphan.reason
    assert jobs.get(tmp_path, waiting.id).status == jobs.QUEUED
    assert conn.llen(f"rq:queue:{queue.QUEUE_NAME}") == 1
