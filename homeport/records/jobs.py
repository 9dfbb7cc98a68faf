"""Job records: one row per deploy or rollback, durable in the data dir's database."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from homeport.errors import Conflict, NotFound
from homeport.records import db

QUEUED, RUNNING, SUCCEEDED, FAILED, SUPERSEDED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "superseded",
)
ENDED = frozenset({SUCCEEDED, FAILED, SUPERSEDED})
# Job kinds: a push or webhook deploys, a rollback, a config change on the live image.
DEPLOY, ROLLBACK, CONFIG = "deploy", "rollback", "config"


class AppBeingDestroyed(Conflict):
    """A job was asked for an app that is being removed."""


@dataclass(frozen=True)
class Job:
    id: str
    app: str
    kind: str
    ref: str
    commit: str
    old_sha: str
    source: str
    status: str
    created_at: float
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    release: int | None = None
    image: str = ""
    started_at: float | None = None
    ended_at: float | None = None

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def public(self) -> dict[str, Any]:
        """The API's view: params may carry webhook URLs, so only safe fields."""
        data = asdict(self)
        data.pop("params")
        return data


def new_id() -> str:
    # Sortable by creation time, unguessable enough to not collide between processes.
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(3)}"


def _row(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        app=row["app"],
        kind=row["kind"],
        ref=row["ref"],
        commit=row["commit_sha"],
        old_sha=row["old_sha"],
        source=row["source"],
        status=row["status"],
        created_at=row["created_at"],
        params=json.loads(row["params"]),
        reason=row["reason"],
        release=row["release"],
        image=row["image"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
    )


def create(
    data_dir: Path,
    *,
    app: str,
    kind: str,
    ref: str,
    commit: str,
    old_sha: str,
    source: str,
    params: dict[str, Any] | None = None,
    conn: sqlite3.Connection | None = None,
) -> Job:
    job = Job(
        id=new_id(),
        app=app,
        kind=kind,
        ref=ref,
        commit=commit,
        old_sha=old_sha,
        source=source,
        status=QUEUED,
        created_at=db.now(),
        params=params or {},
    )
    sql = (
        "INSERT INTO jobs (id, app, kind, ref, commit_sha, old_sha, source, params, status,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    args = (
        job.id,
        app,
        kind,
        ref,
        commit,
        old_sha,
        source,
        json.dumps(job.params),
        QUEUED,
        job.created_at,
    )
    if conn is not None:
        _insert(conn, app, sql, args)
    else:
        with db.connect(data_dir) as c:
            _insert(c, app, sql, args)
    return job


def _insert(conn: sqlite3.Connection, app: str, sql: str, args: tuple[Any, ...]) -> None:
    if db.being_destroyed(conn, app):
        raise AppBeingDestroyed(
            f"app {app!r} is being removed (homeport apps destroy); push again once that has"
            " finished to create it afresh"
        )
    conn.execute(sql, args)


def get(data_dir: Path, job_id: str) -> Job:
    with db.read(data_dir) as conn:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"job {job_id!r} does not exist")
    return _row(row)


def for_app(data_dir: Path, app: str, limit: int = 50) -> list[Job]:
    with db.read(data_dir) as conn:
        rows = conn.execute(
            "SELECT * FROM jobs WHERE app = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (app, limit),
        ).fetchall()
    return [_row(r) for r in rows]


def apps_with(data_dir: Path, status: str) -> list[str]:
    with db.read(data_dir) as conn:
        rows = conn.execute("SELECT DISTINCT app FROM jobs WHERE status = ?", (status,))
        return [r["app"] for r in rows.fetchall()]


def has_queued(data_dir: Path, app: str) -> bool:
    with db.read(data_dir) as conn:
        row = conn.execute(
            "SELECT 1 FROM jobs WHERE app = ? AND status = ? LIMIT 1", (app, QUEUED)
        ).fetchone()
    return row is not None


def newest_queued(data_dir: Path, app: str, *, skip_kind: str | None = None) -> Job | None:
    """The app's newest queued job, leaving out jobs of `skip_kind`."""
    with db.read(data_dir) as conn:
        row = conn.execute(
            "SELECT * FROM jobs WHERE app = ? AND status = ? AND kind != ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (app, QUEUED, skip_kind or ""),
        ).fetchone()
    return None if row is None else _row(row)


def claim_next(data_dir: Path, app: str) -> tuple[Job | None, list[Job]]:
    """Start the app's newest queued job; older queued ones are superseded by it.

    A config job never supersedes a deploy or rollback queued before it: that one runs
    first and the config job stays queued (a deploy reads the config as it is then).
    Returns (the job now running or None, the jobs it superseded).
    """
    with db.connect(data_dir) as conn:
        rows = conn.execute(
            "SELECT * FROM jobs WHERE app = ? AND status = ? ORDER BY created_at DESC, id DESC",
            (app, QUEUED),
        ).fetchall()
        if not rows:
            return None, []
        queued = [_row(r) for r in rows]
        first = next((i for i, j in enumerate(queued) if j.kind != CONFIG), 0)
        chosen, older = queued[first], queued[first + 1 :]
        ts = db.now()
        for job in older:
            conn.execute(
                "UPDATE jobs SET status = ?, reason = ?, ended_at = ? WHERE id = ?",
                (SUPERSEDED, f"superseded by {chosen.commit[:12]}", ts, job.id),
            )
        conn.execute(
            "UPDATE jobs SET status = ?, started_at = ? WHERE id = ?", (RUNNING, ts, chosen.id)
        )
    return get(data_dir, chosen.id), older


def finish(
    data_dir: Path, job_id: str, status: str, reason: str = "", release: int | None = None
) -> None:
    with db.connect(data_dir) as conn:
        conn.execute(
            "UPDATE jobs SET status = ?, reason = ?, release = COALESCE(?, release),"
            " ended_at = ? WHERE id = ?",
            (status, reason, release, db.now(), job_id),
        )


def fail_if_queued(data_dir: Path, job_id: str, reason: str) -> bool:
    """Fail a job that no runner took yet; False if one already did."""
    with db.connect(data_dir) as conn:
        cur = conn.execute(
            "UPDATE jobs SET status = ?, reason = ?, ended_at = ? WHERE id = ? AND status = ?",
            (FAILED, reason, db.now(), job_id, QUEUED),
        )
    return cur.rowcount == 1


def fail_running(data_dir: Path, app: str, reason: str) -> list[str]:
    """Fail the app's jobs left running by a worker that is gone; returns their ids."""
    with db.connect(data_dir) as conn:
        ids = [
            r["id"]
            for r in conn.execute(
                "SELECT id FROM jobs WHERE app = ? AND status = ?", (app, RUNNING)
            ).fetchall()
        ]
        conn.execute(
            "UPDATE jobs SET status = ?, reason = ?, ended_at = ? WHERE app = ? AND status = ?",
            (FAILED, reason, db.now(), app, RUNNING),
        )
    return ids


def is_ended(data_dir: Path, job_id: str) -> bool:
    """Whether the job has ended; polled many times a second by every waiting push."""
    with db.read(data_dir) as conn:
        row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"job {job_id!r} does not exist")
    return row["status"] in ENDED


def pushed_images(data_dir: Path, app: str) -> list[tuple[str, str]]:
    """(commit, image) of every job of the app that pushed an image."""
    with db.read(data_dir) as conn:
        rows = conn.execute(
            "SELECT commit_sha, image FROM jobs WHERE app = ? AND image != ''", (app,)
        ).fetchall()
    return [(row["commit_sha"], row["image"]) for row in rows]


def record_image(data_dir: Path, job_id: str, image: str) -> None:
    """The image the job built and pushed, by digest."""
    with db.connect(data_dir) as conn:
        conn.execute("UPDATE jobs SET image = ? WHERE id = ?", (image, job_id))
