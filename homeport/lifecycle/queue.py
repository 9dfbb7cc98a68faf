"""The Redis and rq adapter: one runner task per app at a time, apps in parallel.

Only the lifecycle (homeport/lifecycle/) decides what runs; this module gives it the
primitives. A runner task for an app is queued or running while the app has work; the
runner keeps a heartbeat key alive and records which process it is, so that a runner
whose heartbeat is gone can be found dead and its process, if it still runs here, killed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import redis
from redis.exceptions import RedisError
from rq import Queue, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException

from homeport.errors import Unavailable
from homeport.settings import Settings

log = logging.getLogger(__name__)

QUEUE_NAME = "homeport"
# The function name every queued job carries. A worker never imports it (it calls
# pipeline.run_app itself), and it stays as it is: jobs queued by an earlier homeport must
# still run after an upgrade.
RUNNER_TASK = "homeport.pipeline.run_app"
HEARTBEAT_SECONDS = 5
HEARTBEAT_TTL = 20
# rq's own timeout is a backstop behind the stages' timeouts, which end a job cleanly.
RQ_TIMEOUT_SLACK = 300


class QueueUnavailable(Unavailable):
    """Redis cannot be reached."""

    dependency = "Redis"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def unavailable(app: str, exc: Exception) -> QueueUnavailable:
    # redis-py's messages name the socket or host and port, never a password.
    return QueueUnavailable(
        f"cannot reach Redis to queue the work of {app!r} ({str(exc).rstrip('.')}); check"
        " HOMEPORT_REDIS_URL and its password, or, with homeport up's own Redis, push again"
        " (it is restarted within seconds)"
    )


def is_timeout(exc: BaseException) -> bool:
    """Whether rq stopped the job for running past its timeout."""
    return isinstance(exc, JobTimeoutException)


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


def _pid_key(app: str) -> str:
    return f"homeport:pid:{app}"


@contextmanager
def locked(conn: redis.Redis, app: str) -> Iterator[None]:
    """The app's short critical sections: deciding who runs next, never the deploy itself."""
    with conn.lock(f"homeport:lock:{app}", timeout=30, blocking_timeout=30):
        yield


def runner_queued(conn: redis.Redis, app: str) -> bool:
    """Whether a runner for the app is queued and not started (it will see new work)."""
    return bool(conn.eval(_RUNNER_QUEUED, 1, _runner_key(app), RqJob.redis_job_namespace_prefix))


def runner_alive(conn: redis.Redis, app: str) -> bool:
    """Whether a runner for the app is queued, or running with a live heartbeat."""
    rq_id: Any = conn.get(_runner_key(app))
    if not rq_id:
        return False
    if isinstance(rq_id, bytes):
        rq_id = rq_id.decode()
    try:
        rq_job = RqJob.fetch(rq_id, connection=conn, serializer=JSONSerializer)
    except NoSuchJobError:
        return False
    status = rq_job.get_status(refresh=False)
    if status in ("queued", "deferred", "scheduled"):
        return True
    if status != "started":
        return False
    if conn.exists(_beat_key(app)):
        return True
    # rq marks the runner started a moment before its process sets the heartbeat; taking
    # that moment for death would queue a second runner beside the first.
    started = rq_job.started_at
    return started is not None and ((datetime.now(UTC) - started).total_seconds() < HEARTBEAT_TTL)


def runner_is_current(conn: redis.Redis, app: str) -> bool:
    """Whether the app's runner key names the rq job this process runs (or names none)."""
    current = get_current_job(connection=conn)
    rq_id: Any = conn.get(_runner_key(app))
    if not rq_id or current is None:
        return True
    return bool((rq_id.decode() if isinstance(rq_id, bytes) else str(rq_id)) == current.id)


def enqueue_runner(settings: Settings, conn: redis.Redis, app: str) -> None:
    # JSON, never pickle: a worker refuses any job it cannot read as run_app("<app>").
    queue = Queue(QUEUE_NAME, connection=conn, serializer=JSONSerializer)
    rq_job = queue.enqueue(
        RUNNER_TASK,
        app,
        job_timeout=settings.job_timeout + RQ_TIMEOUT_SLACK,
        result_ttl=3600,
        failure_ttl=7 * 86400,
    )
    conn.set(_runner_key(app), rq_job.id)


def forget_runner(conn: redis.Redis, app: str) -> None:
    conn.delete(_runner_key(app), _beat_key(app), _pid_key(app))


def runner_ended(conn: redis.Redis, app: str) -> None:
    """This runner's process is done: its heartbeat and process id no longer apply.

    Only its own: they are left alone when another process of the app's has taken them over.
    """
    raw: Any = conn.get(_pid_key(app))
    if raw and (raw.decode() if isinstance(raw, bytes) else str(raw)) != _this_process():
        return
    conn.delete(_beat_key(app), _pid_key(app))


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def kill_stuck_runner(conn: redis.Redis, app: str) -> bool:
    """Kill the app's runner process if it runs on this host without a heartbeat.

    A job process whose heartbeat thread cannot run (a C call holding the GIL) would
    otherwise keep going after its job was declared dead. Returns whether one was killed.
    """
    raw: Any = conn.get(_pid_key(app))
    if not raw:
        return False
    host, _, pid_text = (raw.decode() if isinstance(raw, bytes) else str(raw)).rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    pid = int(pid_text)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if b"homeport" not in fh.read():
                return False  # the number was reused by something else
        os.kill(pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        return False
    log.warning("killed the job process %d of %s: its heartbeat stopped", pid, app)
    return True


class Heartbeat:
    """Keeps the app's heartbeat key alive while a runner works, and names its process."""

    def __init__(self, conn: redis.Redis, app: str) -> None:
        self._conn = conn
        self._key = _beat_key(app)
        self._pid_key = _pid_key(app)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._conn.set(self._key, "1", ex=HEARTBEAT_TTL)
            except RedisError:
                log.warning("cannot refresh the heartbeat %s", self._key)

    def __enter__(self) -> Heartbeat:
        pipe = self._conn.pipeline()
        pipe.set(self._key, "1", ex=HEARTBEAT_TTL)
        pipe.set(self._pid_key, _this_process())
        pipe.execute()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
