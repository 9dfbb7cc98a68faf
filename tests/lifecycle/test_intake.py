"""Intake and scheduling on real Redis and the real database: one honest state per job."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from rq.job import Job as RqJob

from homeport import lifecycle
from homeport.lifecycle import intake, queue
from homeport.processes.redis import EmbeddedRedis
from homeport.records import db, joblog, jobs
from homeport.settings import Settings
from tests.support.servers import start_redis


def _submit(settings: Settings, conn: redis.Redis, app: str, commit: str) -> jobs.Job:
    submitted = lifecycle.submit_deploy(
        settings,
        conn,
        app=app,
        ref="refs/heads/main",
        commit=commit,
        old_sha="0" * 40,
        source="push",
    )
    assert isinstance(submitted, lifecycle.Submitted)
    return submitted.job


def _settings(tmp_path: Path, redis_url: str) -> Settings:
    db.init(tmp_path)
    return Settings(data_dir=tmp_path, redis_url=redis_url)


def test_claim_runs_the_newest_and_supersedes_the_rest(tmp_path: Path, redis_url: str) -> None:
    """Three queued jobs: the newest runs, the two older ones end superseded and say so."""
    settings = _settings(tmp_path, redis_url)
    conn = redis.Redis.from_url(redis_url)
    a, b, c = (_submit(settings, conn, "blog", x * 40) for x in "abc")
    other = _submit(settings, conn, "api", "d" * 40)
    running = lifecycle.claim(settings, conn, "blog")
    assert running is not None and running.id == c.id and running.status == jobs.RUNNING
    for old in (a, b):
        ended = jobs.get(tmp_path, old.id)
        assert (ended.status, ended.reason) == (jobs.SUPERSEDED, f"superseded by {'c' * 12}")
    log = joblog.log_path(tmp_path, "blog", a.id).read_text()
    assert "superseded by a newer push (cccccccccccc)" in log
    assert jobs.get(tmp_path, other.id).status == jobs.QUEUED


def test_a_newer_job_supersedes_a_running_one_before_its_rollout(
    tmp_path: Path, redis_url: str
) -> None:
    """Once a newer job is queued, the running one ends superseded, naming it, not rolled out."""
    settings = _settings(tmp_path, redis_url)
    conn = redis.Redis.from_url(redis_url)
    _submit(settings, conn, "blog", "a" * 40)
    running = lifecycle.claim(settings, conn, "blog")
    assert running is not None
    lifecycle.check_newest(settings, running)  # nothing newer: it goes on
    _submit(settings, conn, "api", "c" * 40)
    lifecycle.check_newest(settings, running)  # another app's job is not newer work
    newer = _submit(settings, conn, "blog", "b" * 40)
    with pytest.raises(lifecycle.Superseded) as caught:
        lifecycle.check_newest(settings, running)
    assert caught.value.newer.id == newer.id
    lifecycle.supersede(settings, running, caught.value.newer)
    ended = jobs.get(tmp_path, running.id)
    assert (ended.status, ended.reason) == (jobs.SUPERSEDED, f"superseded by {'b' * 12}")
    log = joblog.log_path(tmp_path, "blog", running.id).read_text()
    assert f"superseded by a newer push ({'b' * 12}); not rolled out" in log
    assert jobs.get(tmp_path, newer.id).status == jobs.QUEUED


def test_submit_queues_one_runner_per_app(tmp_path: Path, redis_url: str) -> None:
    """Submitting twice for one app queues one runner; another app gets its own."""
    settings = _settings(tmp_path, redis_url)
    conn = redis.Redis.from_url(redis_url)
    _submit(settings, conn, "blog", "a" * 40)
    _submit(settings, conn, "blog", "b" * 40)
    _submit(settings, conn, "api", "c" * 40)
    assert conn.llen(f"rq:queue:{queue.QUEUE_NAME}") == 2


def test_a_duplicate_delivery_names_the_first_job(tmp_path: Path, redis_url: str) -> None:
    """A dedup key seen before returns the earlier job and queues nothing more."""
    settings = _settings(tmp_path, redis_url)
    conn = redis.Redis.from_url(redis_url)
    first = lifecycle.submit_deploy(
        settings, conn, app="blog", ref="refs/heads/main", commit="a" * 40,
        old_sha="0" * 40, source="github", dedup=["github:1"],
    )  # fmt: skip
    again = lifecycle.submit_deploy(
        settings, conn, app="blog", ref="refs/heads/main", commit="a" * 40,
        old_sha="0" * 40, source="github", dedup=["github:1"],
    )  # fmt: skip
    assert isinstance(first, lifecycle.Submitted)
    assert again == lifecycle.Duplicate(first.job.id)
    assert len(jobs.for_app(tmp_path, "blog")) == 1


def test_recover_fails_orphans_and_restarts_the_queue(tmp_path: Path, redis_url: str) -> None:
    """A job left running by a dead worker fails with a reason; queued work runs again."""
    settings = _settings(tmp_path, redis_url)
    conn = redis.Redis.from_url(redis_url)
    _submit(settings, conn, "blog", "a" * 40)
    running = lifecycle.claim(settings, conn, "blog")
    assert running is not None
    conn.flushall()  # as after kill -9 of the worker, or Redis losing its data
    waiting = _submit(settings, conn, "blog", "b" * 40)
    conn.flushall()
    lifecycle.recover(settings, conn)
    orphan = jobs.get(tmp_path, running.id)
    assert orphan.status == jobs.FAILED and "worker stopped" in orphan.reason
    assert jobs.get(tmp_path, waiting.id).status == jobs.QUEUED
    assert conn.llen(f"rq:queue:{queue.QUEUE_NAME}") == 1


def _mark_runner_started(conn: redis.Redis, app: str, ago: float = 0.0) -> None:
    """What rq does when a worker takes the runner, a moment before run_app begins."""
    rq_job = RqJob.fetch(conn.get(f"homeport:runner:{app}").decode(), connection=conn)
    pipe = conn.pipeline()
    rq_job.prepare_for_execution("worker", pipe)
    pipe.execute()
    if ago:
        started = datetime.now(UTC) - timedelta(seconds=ago)
        conn.hset(rq_job.key, "started_at", started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def test_a_runner_about_to_beat_is_not_taken_for_dead(tmp_path: Path, redis_url: str) -> None:
    """Started by rq, heartbeat not yet set: recovery neither fails its job nor doubles it."""
    settings = _settings(tmp_path, redis_url)
    conn = redis.Redis.from_url(redis_url)
    _submit(settings, conn, "blog", "a" * 40)
    _mark_runner_started(conn, "blog")
    running = lifecycle.claim(settings, conn, "blog")
    assert running is not None
    assert queue.runner_alive(conn, "blog")
    lifecycle.recover(settings, conn)
    assert jobs.get(tmp_path, running.id).status == jobs.RUNNING
    assert conn.llen(f"rq:queue:{queue.QUEUE_NAME}") == 1  # no second runner


def test_a_runner_that_never_beat_is_dead_after_the_heartbeat_ttl(
    tmp_path: Path, redis_url: str
) -> None:
    """Started long ago without a heartbeat: its job fails as orphaned."""
    settings = _settings(tmp_path, redis_url)
    conn = redis.Redis.from_url(redis_url)
    _submit(settings, conn, "blog", "a" * 40)
    running = lifecycle.claim(settings, conn, "blog")
    assert running is not None
    _mark_runner_started(conn, "blog", ago=queue.HEARTBEAT_TTL + 5)
    assert not queue.runner_alive(conn, "blog")
    lifecycle.recover(settings, conn)
    assert jobs.get(tmp_path, running.id).status == jobs.FAILED


@pytest.fixture
def own_redis(tmp_path: Path) -> EmbeddedRedis:
    """A Redis of the test's own, to stop and start."""
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


def test_a_push_refused_while_redis_is_down_never_deploys_later(
    tmp_path: Path, own_redis: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queue down: the job is recorded failed with the reason; once Redis is back, nothing runs."""
    monkeypatch.setattr(intake, "QUEUE_WAIT", 0.5)
    settings = _settings(tmp_path / "data", own_redis.url)
    conn = redis.Redis.from_url(own_redis.url)
    own_redis.stop()
    with pytest.raises(queue.QueueUnavailable, match="cannot reach Redis") as refused:
        _submit(settings, conn, "blog", "a" * 40)
    assert refused.value.dependency == "Redis"
    (job,) = jobs.for_app(settings.data_dir, "blog")
    assert job.status == jobs.FAILED
    assert job.reason.startswith("not queued: cannot reach Redis")
    assert "not queued" in joblog.log_path(settings.data_dir, "blog", job.id).read_text()
    own_redis.start()
    lifecycle.recover(settings, conn)  # what every worker does every few seconds
    assert jobs.get(settings.data_dir, job.id).status == jobs.FAILED
    assert conn.llen(f"rq:queue:{queue.QUEUE_NAME}") == 0


def test_a_push_during_a_redis_restart_waits_and_is_queued(
    tmp_path: Path, own_redis: EmbeddedRedis
) -> None:
    """Redis back within a second or two (as `homeport up` restarts it): the push goes through."""
    settings = _settings(tmp_path / "data", own_redis.url)
    conn = redis.Redis.from_url(own_redis.url)
    own_redis.stop()
    restart = threading.Timer(1.5, own_redis.start)
    restart.start()
    try:
        job = _submit(settings, conn, "blog", "a" * 40)
    finally:
        restart.join()
    assert jobs.get(settings.data_dir, job.id).status == jobs.QUEUED
    assert conn.llen(f"rq:queue:{queue.QUEUE_NAME}") == 1


def test_a_refused_delivery_can_be_delivered_again(
    tmp_path: Path, own_redis: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook refused while the queue is down is not a duplicate when redelivered."""
    monkeypatch.setattr(intake, "QUEUE_WAIT", 0.3)
    settings = _settings(tmp_path / "data", own_redis.url)
    conn = redis.Redis.from_url(own_redis.url)
    submit = dict(
        app="blog", ref="refs/heads/main", commit="a" * 40, old_sha="0" * 40, source="github",
        dedup=["github:7"],
    )  # fmt: skip
    own_redis.stop()
    with pytest.raises(queue.QueueUnavailable):
        lifecycle.submit_deploy(settings, conn, **submit)  # type: ignore[arg-type]
    own_redis.start()
    again = lifecycle.submit_deploy(settings, conn, **submit)  # type: ignore[arg-type]
    assert isinstance(again, lifecycle.Submitted) and again.job.status == jobs.QUEUED
    assert conn.llen(f"rq:queue:{queue.QUEUE_NAME}") == 1


def test_a_cron_run_needs_an_app_with_a_live_release(tmp_path: Path) -> None:
    """An app without a live release has no cron to run, and the message says to push."""
    from homeport.errors import Conflict

    settings = Settings(data_dir=tmp_path)
    db.init(tmp_path)
    with pytest.raises(Conflict, match="blog has no live release, so no cron to run; push"):
        lifecycle.start_cron_run(settings, "blog", "backup")


def test_a_config_job_never_supersedes_an_earlier_deploy(tmp_path: Path, redis_url: str) -> None:
    """A deploy queued before a config job runs first; the config job waits, then runs."""
    settings = _settings(tmp_path, redis_url)
    conn = redis.Redis.from_url(redis_url)
    deploy = _submit(settings, conn, "blog", "a" * 40)
    config = jobs.create(
        tmp_path,
        app="blog",
        kind=jobs.CONFIG,
        ref="refs/heads/main",
        commit="a" * 40,
        old_sha="0" * 40,
        source="api",
    )
    assert jobs.newest_queued(tmp_path, "blog", skip_kind=jobs.CONFIG) == deploy
    running = lifecycle.claim(settings, conn, "blog")
    assert running is not None and running.id == deploy.id
    assert jobs.get(tmp_path, config.id).status == jobs.QUEUED
    lifecycle.succeed(settings, running, None)
    after = lifecycle.claim(settings, conn, "blog")
    assert after is not None and after.id == config.id


def test_a_deploy_supersedes_an_earlier_config_job(tmp_path: Path, redis_url: str) -> None:
    """A deploy reads the config as it is then: a config job queued before it is superseded."""
    settings = _settings(tmp_path, redis_url)
    conn = redis.Redis.from_url(redis_url)
    config = jobs.create(
        tmp_path,
        app="blog",
        kind=jobs.CONFIG,
        ref="refs/heads/main",
        commit="a" * 40,
        old_sha="0" * 40,
        source="api",
    )
    deploy = _submit(settings, conn, "blog", "b" * 40)
    running = lifecycle.claim(settings, conn, "blog")
    assert running is not None and running.id == deploy.id
    assert jobs.get(tmp_path, config.id).status == jobs.SUPERSEDED
