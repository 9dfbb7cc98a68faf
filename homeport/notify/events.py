"""What homeport tells the outside world: one event per outcome, as plain data.

The lifecycle makes them where it records outcomes; deliver.py delivers them. Kinds:

    release.live     a release went live (a deploy or a rollback)
    release.failed   a release never became ready; `rolled_back_to` names what serves instead
    job.failed       a job failed before a release was made (fetch, build, push, shutdown)
    cron.failed      a scheduled run failed (for cron jobs; same fields, `job` names the run)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from homeport.records.jobs import Job
    from homeport.release import Release

RELEASE_LIVE = "release.live"
RELEASE_FAILED = "release.failed"
JOB_FAILED = "job.failed"
CRON_FAILED = "cron.failed"

# A reason is a line for people; a runaway one must not make a huge notification.
MAX_REASON = 2000


@dataclass(frozen=True)
class Event:
    """One outcome worth telling someone about."""

    event: str
    app: str
    version: int | None
    commit: str
    cause: str
    reason: str = ""
    url: str | None = None
    rolled_back_to: int | None = None
    job: str | None = None
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body homeport's own webhook receives."""
        data = asdict(self)
        data["reason"] = self.reason[:MAX_REASON]
        data["time_iso"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def what(self) -> str:
        return f"{self.app} v{self.version}" if self.version is not None else self.app

    def title(self) -> str:
        """One short line, e.g. the title of a phone notification."""
        if self.event == RELEASE_LIVE:
            return f"{self.what} is live"
        if self.event == RELEASE_FAILED:
            return f"{self.what} failed"
        if self.event == CRON_FAILED:
            return f"{self.app}: a scheduled run failed"
        return f"{self.app}: deploy of {self.commit[:12]} failed"

    def body(self) -> str:
        """A few lines for people: what, why, where."""
        lines = [f"commit {self.commit[:12]} ({self.cause})"]
        if self.reason:
            lines.append(self.reason[:MAX_REASON])
        if self.rolled_back_to is not None:
            lines.append(f"rolled back to v{self.rolled_back_to}")
        if self.url:
            lines.append(self.url)
        return "\n".join(lines)


def cause_of(job: Job | None) -> str:
    """What started a release: how its job came in (push, github, api, hook, ...)."""
    # Finer than the release's own cause (push | webhook | rollback | config): it names the
    # forge a webhook came from.
    if job is None:
        return "recovery"
    return job.kind if job.kind in ("rollback", "config") else job.source


def release_url(release: Release) -> str | None:
    """The app's address, when its release has an ingress host."""
    host = (release.config.get("spec") or {}).get("ingress_host")
    return f"http://{host}/" if host else None


def release_live(release: Release, job: Job | None) -> Event:
    return Event(
        event=RELEASE_LIVE,
        app=release.app,
        version=release.version,
        commit=release.commit,
        cause=cause_of(job),
        url=release_url(release),
        job=release.job_id,
    )


def release_failed(release: Release, job: Job, reason: str, restored: int | None) -> Event:
    return Event(
        event=RELEASE_FAILED,
        app=release.app,
        version=release.version,
        commit=release.commit,
        cause=cause_of(job),
        reason=reason,
        url=release_url(release),
        rolled_back_to=restored,
        job=job.id,
    )


def job_failed(job: Job, reason: str) -> Event:
    return Event(
        event=JOB_FAILED,
        app=job.app,
        version=None,
        commit=job.commit,
        cause=cause_of(job),
        reason=reason,
        job=job.id,
    )
