"""Job records for deployer tests that call the lifecycle directly."""

from __future__ import annotations

from homeport.records import db, jobs
from homeport.settings import Settings


def job_record(
    settings: Settings, kind: str = "deploy", version: int | None = None, *, app: str = "web"
) -> jobs.Job:
    """A job record, as the lifecycle's intake would have made it."""
    db.init(settings.data_dir)
    return jobs.create(
        settings.data_dir,
        app=app,
        kind=kind,
        ref="refs/heads/main",
        commit="0" * 40,
        old_sha="0" * 40,
        source="api",
        params={} if version is None else {"version": version},
    )
