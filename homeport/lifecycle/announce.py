"""Telling notification targets what happened: a release live or failed, a job or cron failed."""

from __future__ import annotations

from homeport import notify
from homeport.errors import HomeportError
from homeport.notify import events
from homeport.records import db, jobs, releases
from homeport.release import Release
from homeport.settings import Settings


def job_of(settings: Settings, job_id: str | None) -> jobs.Job | None:
    if not job_id:
        return None
    try:
        return jobs.get(settings.data_dir, job_id)
    except HomeportError:
        return None


def release_live(settings: Settings, release: Release) -> None:
    notify.send(settings, events.release_live(release, job_of(settings, release.job_id)))


def job_failure(settings: Settings, job: jobs.Job, reason: str) -> None:
    """release.failed when the job's release never went live, else job.failed."""
    with db.connect(settings.data_dir) as tx:
        row = tx.execute(
            "SELECT r.version, a.restored FROM releases r LEFT JOIN auto_rollbacks a"
            " ON a.app = r.app AND a.version = r.version"
            " WHERE r.job_id = ? AND r.status = 'failed' ORDER BY r.version DESC LIMIT 1",
            (job.id,),
        ).fetchone()
    if row is None:
        notify.send(settings, events.job_failed(job, reason))
        return
    release = releases.get(settings.data_dir, job.app, int(row["version"]))
    notify.send(settings, events.release_failed(release, job, reason, row["restored"]))


def announce_cron_failure(
    settings: Settings, *, app: str, run: str, commit: str, reason: str, cause: str = "cron"
) -> None:
    """Tell the notification targets a scheduled run failed (reason already masked).

    `run` names the run's output, as a job id does, for the delivery's outcome line.
    """
    event = events.Event(
        event=events.CRON_FAILED,
        app=app,
        version=None,
        commit=commit,
        cause=cause,
        reason=reason,
        job=run,
    )
    notify.send(settings, event)
