"""Job and release records written straight into a data dir, for pages that only read them."""

from __future__ import annotations

import secrets
from pathlib import Path

from homeport.records import db, joblog, jobs, releases
from homeport.release import Release


def make_app(data_dir: Path, app: str) -> None:
    """An app as the data dir knows it: its bare repository's objects directory."""
    db.init(data_dir)
    (data_dir / "repos" / f"{app}.git" / "objects").mkdir(parents=True, exist_ok=True)


def seed_app(
    data_dir: Path,
    app: str,
    count: int,
    *,
    host: str | None = None,
    registry: str = "127.0.0.1:5000",
    failed_every: int = 0,
) -> list[Release]:
    """`count` deploys of the app, each with a succeeded job and a release; the last is live.

    With failed_every=N, every Nth release failed (with a reason) instead of going live.
    """
    make_app(data_dir, app)
    made = []
    for n in range(1, count + 1):
        commit = secrets.token_hex(20)
        job = jobs.create(
            data_dir,
            app=app,
            kind="deploy",
            ref="refs/heads/main",
            commit=commit,
            old_sha="0" * 40,
            source="push",
        )
        digest = "sha256:" + secrets.token_hex(32)
        spec = {"port": 8080, "replicas": 1, "ingress_host": host, "env": {}}
        release = releases.create(
            data_dir,
            app=app,
            commit=commit,
            image=f"{registry}/{app}@{digest}",
            config={"spec": spec, "env_keys": []},
            job_id=job.id,
        )
        path = joblog.log_path(data_dir, app, job.id)
        joblog.JobLog(path).write(f"-----> Building {app}@{commit[:12]}")
        if failed_every and n % failed_every == 0 and n != count:
            releases.mark(data_dir, app, release.version, "failed", "readiness probe failed")
            jobs.finish(data_dir, job.id, jobs.FAILED, f"{app} v{n} failed")
        else:
            releases.mark_live(data_dir, app, release.version)
            joblog.JobLog(path).write(f"-----> {app} v{n} is live")
            jobs.finish(data_dir, job.id, jobs.SUCCEEDED, "", release.version)
        made.append(releases.get(data_dir, app, release.version))
    return made


def queued_job(data_dir: Path, app: str, *, source: str = "push") -> jobs.Job:
    """A deploy job of app's main branch, queued and never picked up."""
    return jobs.create(
        data_dir,
        app=app,
        kind="deploy",
        ref="refs/heads/main",
        commit="a" * 40,
        old_sha="0" * 40,
        source=source,
    )
