"""A runner's jobs: claim the newest, supersede older ones, record how each ends, recover.

A job's runner (pipeline.run_app) moves the job through its states with these functions;
`recover` is the one place that restarts an app whose runner died.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from homeport.lifecycle import announce, queue
from homeport.lifecycle.common import (
    HUNG_REASON,
    ORPHAN_REASON,
    SHUTDOWN_REASON,
    Superseded,
    output,
)
from homeport.records import db, joblog, jobs
from homeport.settings import Settings

log = logging.getLogger(__name__)


def claim(settings: Settings, conn: redis.Redis, app: str) -> jobs.Job | None:
    """Start the app's newest queued job; older queued ones are superseded by it."""
    with queue.locked(conn, app):
        job, superseded = jobs.claim_next(settings.data_dir, app)
    for old in superseded:
        output(settings, old).write(
            f"-----> superseded by a newer push ({job.commit[:12] if job else '?'})"
        )
    return job


def check_newest(settings: Settings, job: jobs.Job) -> None:
    """Raise Superseded if a newer job of the app is queued.

    Called once the image is built: rolling it out would only be replaced by the newer job at
    once, so a burst of pushes to one app rolls out its last commit, not every one.
    """
    # A queued config change does not stop a deploy: the deploy reads the config as it is.
    newer = jobs.newest_queued(settings.data_dir, job.app, skip_kind=jobs.CONFIG)
    if newer is not None:
        raise Superseded(newer)


def newer_queued(settings: Settings, job: jobs.Job) -> bool:
    """Whether a newer deploy of the app waits: asked while the job builds, to stop early.

    As in check_newest, a queued config change is not one.
    """
    return jobs.newest_queued(settings.data_dir, job.app, skip_kind=jobs.CONFIG) is not None


def supersede(settings: Settings, job: jobs.Job, newer: jobs.Job) -> None:
    output(settings, job).write(
        f"-----> superseded by a newer push ({newer.commit[:12]}); not rolled out"
    )
    jobs.finish(settings.data_dir, job.id, jobs.SUPERSEDED, f"superseded by {newer.commit[:12]}")


def hand_over(settings: Settings, conn: redis.Redis, app: str) -> None:
    """A runner ends: queue the next one if work arrived meanwhile."""
    with queue.locked(conn, app):
        queue.runner_ended(conn, app)
        if not queue.runner_is_current(conn, app) and queue.runner_alive(conn, app):
            return  # another runner of the app was queued meanwhile; it takes the work
        if jobs.has_queued(settings.data_dir, app):
            queue.enqueue_runner(settings, conn, app)
        else:
            queue.forget_runner(conn, app)


def succeed(settings: Settings, job: jobs.Job, release: int | None) -> None:
    jobs.finish(settings.data_dir, job.id, jobs.SUCCEEDED, "", release)


def fail(settings: Settings, job: jobs.Job, reason: str) -> None:
    """Record the job failed (reason already masked) and tell whoever wants to know."""
    jobs.finish(settings.data_dir, job.id, jobs.FAILED, reason)
    announce.job_failure(settings, job, reason)


@contextmanager
def stage(settings: Settings, job: jobs.Job, name: str) -> Iterator[None]:
    """Record how long a stage of the job (fetch, build, rollout) took, however it ended."""
    started = time.monotonic()
    try:
        yield
    finally:
        with db.connect(settings.data_dir) as tx:
            tx.execute(
                "INSERT OR REPLACE INTO job_stages (job_id, app, stage, seconds, recorded_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (job.id, job.app, name, time.monotonic() - started, db.now()),
            )


def record_image(settings: Settings, job: jobs.Job, image: str) -> None:
    jobs.record_image(settings.data_dir, job.id, image)


def fail_orphans(settings: Settings, app: str, reason: str) -> None:
    for job_id in jobs.fail_running(settings.data_dir, app, reason):
        path = joblog.log_path(settings.data_dir, app, job_id)
        joblog.JobLog(path, max_bytes=settings.max_log_bytes).write(f"-----> {reason}")
        orphan = announce.job_of(settings, job_id)
        if orphan is not None:
            announce.job_failure(settings, orphan, reason)


def stopped(settings: Settings, app: str) -> None:
    """The app's job process was killed while homeport stopped: its job is recorded stopped.

    The runner's queue is restarted by recover() once its heartbeat has expired.
    """
    fail_orphans(settings, app, SHUTDOWN_REASON)


def recover(settings: Settings, conn: redis.Redis) -> None:
    """Restart queues whose runner died (worker killed, job process hung, Redis lost data)."""
    waiting = set(jobs.apps_with(settings.data_dir, jobs.QUEUED))
    waiting |= set(jobs.apps_with(settings.data_dir, jobs.RUNNING))
    for app in sorted(waiting):
        with queue.locked(conn, app):
            if queue.runner_alive(conn, app):
                continue
            hung = queue.kill_stuck_runner(conn, app)
            fail_orphans(settings, app, HUNG_REASON if hung else ORPHAN_REASON)
            if jobs.has_queued(settings.data_dir, app):
                log.info("restarting the queue of %s", app)
                queue.enqueue_runner(settings, conn, app)
            else:
                queue.forget_runner(conn, app)
