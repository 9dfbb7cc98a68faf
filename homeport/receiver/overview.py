"""What the status page shows, read from the durable records in a few queries.

Reads only: the job and release records are written by homeport.lifecycle alone. The front
page reads every app at once (one query for live releases, one for the newest job of each
app) so that it stays fast with many apps and long histories.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from homeport import apps
from homeport.records import db, jobs, releases
from homeport.release import WAS_LIVE, Release


@dataclass(frozen=True)
class AppSummary:
    """One row of the front page."""

    name: str
    live: Release | None
    last_job: jobs.Job | None

    @property
    def host(self) -> str | None:
        return host_of(self.live)


def host_of(release: Release | None) -> str | None:
    """The ingress host a release serves on, if it has one."""
    if release is None:
        return None
    spec = release.config.get("spec")
    host = spec.get("ingress_host") if isinstance(spec, dict) else None
    return host if isinstance(host, str) and host else None


def summaries(data_dir: Path) -> list[AppSummary]:
    """Every app with its live release and its newest job, by name."""
    # No db.init here: the receiver made the schema when it started.
    names = apps.list_apps(data_dir)
    with db.connect(data_dir) as conn:
        live = {
            r["app"]: releases._row(r)
            for r in conn.execute("SELECT * FROM releases WHERE status = 'live'").fetchall()
        }
        newest = conn.execute(
            "SELECT j.* FROM jobs j JOIN (SELECT app, MAX(created_at) AS at FROM jobs"
            " GROUP BY app) n ON j.app = n.app AND j.created_at = n.at"
            " ORDER BY j.created_at, j.id"
        ).fetchall()
    # The records' own row readers, so the page shows every field they grow.
    # Ties on created_at are broken by id (ids sort by creation): the last one wins.
    last = {row["app"]: jobs._row(row) for row in newest}
    return [AppSummary(name, live.get(name), last.get(name)) for name in names]


@dataclass(frozen=True)
class AppDetail:
    """The app page: releases newest first, with the source of the job that made each."""

    name: str
    releases: list[Release]
    jobs: list[jobs.Job]
    sources: dict[str, str]

    @property
    def live(self) -> Release | None:
        return next((r for r in self.releases if r.status == "live"), None)

    @property
    def host(self) -> str | None:
        return host_of(self.live)

    def cause(self, release: Release) -> str:
        """Why the release was made, and where its job came from when that says more:
        `push`, `webhook (github)`, `rollback (page)`, `config (api)`."""
        source = self.sources.get(release.job_id or "", "")
        return (
            f"{release.cause} ({source})" if source and source != release.cause else release.cause
        )

    def can_roll_back_to(self, release: Release) -> bool:
        """Whether the page offers a rollback to it: it served once and is not what serves."""
        live = self.live
        return (
            release.status in WAS_LIVE
            and release.status != "live"
            and (live is None or live.digest != release.digest)
        )


# Releases and jobs an app page lists; older ones stay reachable through the API.
PAGE_RELEASES = 50
PAGE_JOBS = 30


def detail(data_dir: Path, app: str) -> AppDetail:
    found = releases.history(data_dir, app, limit=PAGE_RELEASES)
    recent = jobs.for_app(data_dir, app, limit=PAGE_JOBS)
    sources = {j.id: j.source for j in recent}
    missing = [r.job_id for r in found if r.job_id and r.job_id not in sources]
    if missing:
        with db.connect(data_dir) as conn:
            marks = ",".join("?" for _ in missing)
            rows = conn.execute(
                f"SELECT id, source FROM jobs WHERE id IN ({marks})",  # noqa: S608
                missing,
            ).fetchall()
        sources.update({r["id"]: r["source"] for r in rows})
    return AppDetail(app, found, recent, sources)
