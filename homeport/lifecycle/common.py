"""What every phase of the lifecycle shares: job output, the reasons it records, outcomes."""

from __future__ import annotations

from collections.abc import Callable

from homeport import masking
from homeport.errors import StageError
from homeport.records import joblog, jobs
from homeport.settings import Settings

SHUTDOWN_REASON = "stopped: homeport was shut down; push again to retry"
ORPHAN_REASON = "the worker stopped while this job ran; push again to retry"
HUNG_REASON = "the job process stopped responding and was killed; push again to retry"
# Job sources that are a provider's webhook (the release's cause is `webhook`).
WEBHOOK_SOURCES = frozenset({"github", "gitea", "gitlab"})

Emit = Callable[[str], None]


class ReleaseFailed(StageError):
    """A release did not go live; the message names it and what runs instead."""


# Not a HomeportError: an outcome of the job, not an error anyone has to act on.
class Superseded(Exception):
    """A newer job of the app is queued: this one ends before it changes the cluster."""

    def __init__(self, newer: jobs.Job) -> None:
        super().__init__(f"superseded by {newer.commit[:12]}")
        self.newer = newer


def output(settings: Settings, job: jobs.Job) -> joblog.JobLog:
    """The job's output, masked with every secret homeport knows."""
    return joblog.JobLog(
        joblog.log_path(settings.data_dir, job.app, job.id),
        masking.masker(settings),
        settings.max_log_bytes,
    )
