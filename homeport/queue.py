"""Scheduling on rq: one runner per app at a time, apps in parallel.

A push records a queued job in the database and makes sure a runner task for its app is
queued or running. The runner starts the app's newest queued job (older queued ones are
superseded) and, when it ends, queues the next runner if more jobs arrived meanwhile.
A runner keeps a heartbeat key alive; a runner whose heartbeat is gone died with its
worker, and `recover` fails its job and restarts the app's queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob

from homeport import joblog, jobs
from homeport.config import Settings
from homeport.errors import HomeportError

log = logging.getLogger(__name__)

QUEUE_NAME = "homeport"
HEARTBEAT_SECONDS = 5
HEARTBEAT_TTL = 20
# rq's own timeout is a backstop behind the stages' timeouts, which end a job cleanly.
RQ_TIMEOUT_SLACK = 300


class QueueUnavailable(HomeportError):
    """Redis cannot be reached."""


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


# One round trip for the common case of a burst of pushes: is the app's runner still queued?
_RUNNER_QUEUED = """
local id = redis.call('GET', KEYS[1])
if not id then return 0 end
if redis.call('HGET', ARGV[1] .. id, 'status') == 'queued' then return 1 end
return 0
"""


def _runner_key(app: str) -> str:
    return f"homeport:runner:{app}"


def _beat_key(app: str) -> str:
    return f"homeport:beat:{app}"


@contextmanager
def _app_lock(conn: redis.Redis, app: str) -> Iterator[None]:
    # Short critical sections only: deciding who runs next, never the deploy itself.
    with conn.lock(f"homeport:lock:{app}", timeout=30, blocking_timeout=30):
        yield


def _runner_alive(conn: redis.Redis, rq_id: bytes | str | None, app: str) -> bool:
    if not rq_id:
        return False
    if isinstance(rq_id, bytes):
        rq_id = rq_id.decode()
    try:
        rq_job = RqJob.fetch(rq_id, connection=conn)
    except NoSuchJobError:
        return False
    status = rq_job.get_status(refresh=False)
    if status in ("queued", "deferred", "scheduled"):
        return True
    if status == "started":
        return bool(conn.exists(_beat_key(app)))
    return False


def runner_alive(conn: redis.Redis, app: str) -> bool:
    """Whether a runner for the app is queued, or running with a live heartbeat."""
    return _runner_alive(conn, conn.get(_runner_key(app)), app)


def _enqueue_runner(settings: Settings, conn: redis.Redis, app: str) -> None:
    queue = Queue(QUEUE_NAME, connection=conn)
    rq_job = queue.enqueue(
        "homeport.pipeline.run_app",
        app,
        job_timeout=settings.job_timeout + RQ_TIMEOUT_SLACK,
        result_ttl=3600,
        failure_ttl=7 * 86400,
    )
    conn.set(_runner_key(app), rq_job.id)


def submit(settings: Settings, conn: redis.Redis, app: str) -> None:
    """Make sure the app's queued jobs will run (call after the job is recorded).

    Fast path without the lock: a runner that has not started yet will claim the newest
    job when it starts, and the job is already recorded, so nothing more is needed.
    """
    try:
        if conn.eval(_RUNNER_QUEUED, 1, _runner_key(app), RqJob.redis_job_namespace_prefix):
            return
        with _app_lock(conn, app):
            if not _runner_alive(conn, conn.get(_runner_key(app)), app):
                _fail_orphans(settings, app)
                _enqueue_runner(settings, conn, app)
    except RedisError as exc:
        raise QueueUnavailable(
            f"cannot reach Redis to queue the deploy of {app!r}: {exc}; "
            "check HOMEPORT_REDIS_URL or restart homeport"
        ) from exc


def _fail_orphans(settings: Settings, app: str) -> None:
    reason = "the worker stopped while this job ran; push again to retry"
    for job_id in jobs.fail_running(settings.data_dir, app, reason):
        path = joblog.log_path(settings.data_dir, app, job_id)
        joblog.JobLog(path, max_bytes=settings.max_log_bytes).write(f"-----> {reason}")


def recover(settings: Settings, conn: redis.Redis) -> None:
    """At worker start: restart queues whose runner died (worker killed, Redis lost data)."""
    apps = set(jobs.apps_with(settings.data_dir, jobs.QUEUED))
    apps |= set(jobs.apps_with(settings.data_dir, jobs.RUNNING))
    for app in sorted(apps):
        with _app_lock(conn, app):
            if _runner_alive(conn, conn.get(_runner_key(app)), app):
                continue
            _fail_orphans(settings, app)
            if jobs.has_queued(settings.data_dir, app):
                log.info("restarting the queue of %s", app)
                _enqueue_runner(settings, conn, app)
            else:
                conn.delete(_runner_key(app))


def claim(
    settings: Settings, conn: redis.Redis, app: str
) -> tuple[jobs.Job | None, list[jobs.Job]]:
    with _app_lock(conn, app):
        return jobs.claim_next(settings.data_dir, app)


def runner_done(settings: Settings, conn: redis.Redis, app: str) -> None:
    """Called by a runner as it ends: queue the next one if work arrived meanwhile."""
    with _app_lock(conn, app):
        if jobs.has_queued(settings.data_dir, app):
            _enqueue_runner(settings, conn, app)
        else:
            conn.delete(_runner_key(app))
        conn.delete(_beat_key(app))


class Heartbeat:
    """Keeps the app's heartbeat key alive while a runner works."""

    def __init__(self, conn: redis.Redis, app: str) -> None:
        self._conn = conn
        self._key = _beat_key(app)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._conn.set(self._key, "1", ex=HEARTBEAT_TTL)
            except RedisError:
                log.warning("cannot refresh the heartbeat %s", self._key)
            self._stop.wait(HEARTBEAT_SECONDS)

    def __enter__(self) -> Heartbeat:
        self._conn.set(self._key, "1", ex=HEARTBEAT_TTL)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
