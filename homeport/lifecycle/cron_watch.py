"""Telling the owner when a scheduled run fails.

Runs of `[cron]` entries are Kubernetes Jobs that nobody waits for, so a failure at 3 am
would pass in silence. Each worker looks at the runs every maintenance round while anyone
is to be told (HOMEPORT_NOTIFY or HOMEPORT_NOTIFY_WEBHOOK with cron.failed); the database
decides which worker announces a failed run, and that it is announced once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from homeport import lifecycle
from homeport.deployer import cron
from homeport.deployer.kube import Kube
from homeport.deployer.processes import PART_OF
from homeport.notify import events
from homeport.records import db, releases
from homeport.settings import Settings

log = logging.getLogger(__name__)

# A run that failed longer ago than this when homeport first sees it (after homeport was
# down, or on first start) is history, not news.
NEWS_SECONDS = 3600
# Announced runs are remembered this long; Kubernetes keeps only the last few anyway.
KEEP_SECONDS = 7 * 86400


def wanted(settings: Settings) -> bool:
    return bool(settings.notify or settings.notify_webhook) and (
        events.CRON_FAILED in settings.notify_events
    )


def _age(timestamp: Any) -> float | None:
    try:
        ended = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (datetime.now(UTC) - ended).total_seconds()


def _claim(settings: Settings, job_name: str) -> bool:
    """Whether this process is the first to announce the run."""
    with db.connect(settings.data_dir) as tx:
        tx.execute("DELETE FROM cron_failures WHERE seen_at < ?", (db.now() - KEEP_SECONDS,))
        cursor = tx.execute(
            "INSERT OR IGNORE INTO cron_failures (job, seen_at) VALUES (?, ?)",
            (job_name, db.now()),
        )
        return cursor.rowcount == 1


def announce_failures(settings: Settings) -> int:
    """Announce each failed cron run not announced before; returns how many were."""
    if not wanted(settings):
        return 0
    with Kube(settings) as kube:
        items = kube.list("jobs", selector=cron.CRON_KEY).get("items") or []
    told = 0
    for job in items:
        run = cron.outcome(job)
        labels = job.get("metadata", {}).get("labels") or {}
        app, entry = labels.get(PART_OF), labels.get(cron.CRON_KEY)
        if run["status"] != "failed" or not app or not entry:
            continue
        age = _age(run["ended_at"])
        if age is None or age > NEWS_SECONDS or not _claim(settings, run["job"]):
            continue
        live = releases.live(settings.data_dir, app)
        reason = f"cron {entry} failed: {run['reason'] or 'its run failed'}"
        lifecycle.announce_cron_failure(
            settings, app=app, run=run["job"], commit=live.commit if live else "", reason=reason
        )
        told += 1
    return told
