"""The release record: every rollout attempt of an app, numbered v1, v2, ... per app.

Kept in the SQLite file of records/db.py, not in Redis or in the cluster: it must survive a
Redis restart, a worker being killed and a reinstall of the cluster, and it is what a rollback
reads to find an earlier image digest and configuration. SQLite gives transactions, so allocating
the next version and keeping at most one `live` release per app (a partial unique index) cannot
race between two workers. Env values are never stored here: they live in the release's
immutable Secret, and the record keeps only the Secret's name and the env names.

Statuses:
    deploying    the rollout is in progress (reconcile() settles one left by a dead worker)
    live         what the cluster serves; at most one per app
    failed       never became ready; reason says why
    rolled_back  was live, then replaced by a rollback
    superseded   was live and a newer release went live (or it never started)
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from homeport.errors import NotFound
from homeport.records import db
from homeport.release import WAS_LIVE, Cause, Release, Status


def _row(row: sqlite3.Row) -> Release:
    return Release(
        app=row["app"],
        version=row["version"],
        commit=row["commit_sha"],
        image=row["image"],
        config=json.loads(row["config"]),
        status=row["status"],
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        rollback_of=row["rollback_of"],
        job_id=row["job_id"],
        # Rows from before causes were recorded were all pushes.
        cause=row["cause"] if "cause" in row.keys() else "push",
    )


def create(
    data_dir: Path,
    *,
    app: str,
    commit: str,
    image: str,
    config: dict[str, Any],
    job_id: str | None = None,
    rollback_of: int | None = None,
    cause: Cause = "push",
) -> Release:
    """Record a new `deploying` release with the next version number of the app."""
    db.init(data_dir)
    now = db.now()
    with db.connect(data_dir) as conn:
        (last,) = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM releases WHERE app = ?", (app,)
        ).fetchone()
        version = int(last) + 1
        conn.execute(
            "INSERT INTO releases (app, version, commit_sha, image, config, status, reason,"
            " rollback_of, job_id, created_at, updated_at, cause)"
            " VALUES (?, ?, ?, ?, ?, 'deploying', '', ?, ?, ?, ?, ?)",
            (app, version, commit, image, json.dumps(config), rollback_of, job_id, now, now, cause),
        )
    return get(data_dir, app, version)


def get(data_dir: Path, app: str, version: int) -> Release:
    """The release, or NotFound naming what exists."""
    db.init(data_dir)
    with db.connect(data_dir) as conn:
        row = conn.execute(
            "SELECT * FROM releases WHERE app = ? AND version = ?", (app, version)
        ).fetchone()
        if row is None:
            (last,) = conn.execute(
                "SELECT MAX(version) FROM releases WHERE app = ?", (app,)
            ).fetchone()
    if row is None:
        known = f"its releases are v1 to v{last}" if last else "it has no releases yet"
        raise NotFound(f"app '{app}' has no release v{version}; {known} (see `homeport releases`)")
    return _row(row)


def history(data_dir: Path, app: str, limit: int | None = None) -> list[Release]:
    """Releases of the app, newest first."""
    db.init(data_dir)
    query = "SELECT * FROM releases WHERE app = ? ORDER BY version DESC"
    params: tuple[Any, ...] = (app,)
    if limit is not None:
        query += " LIMIT ?"
        params = (app, limit)
    with db.connect(data_dir) as conn:
        return [_row(r) for r in conn.execute(query, params).fetchall()]


def live(data_dir: Path, app: str) -> Release | None:
    """The release the app serves, if any."""
    db.init(data_dir)
    with db.connect(data_dir) as conn:
        row = conn.execute(
            "SELECT * FROM releases WHERE app = ? AND status = 'live'", (app,)
        ).fetchone()
    return _row(row) if row else None


def deploying(data_dir: Path, app: str | None = None) -> list[Release]:
    """Releases still marked `deploying`, oldest first."""
    db.init(data_dir)
    query = "SELECT * FROM releases WHERE status = 'deploying'"
    params: tuple[Any, ...] = ()
    if app is not None:
        query += " AND app = ?"
        params = (app,)
    with db.connect(data_dir) as conn:
        return [_row(r) for r in conn.execute(query + " ORDER BY created_at", params).fetchall()]


def mark_live(
    data_dir: Path, app: str, version: int, *, replaced: Status = "superseded"
) -> Release:
    """Make the release live; the one live before it becomes `replaced` in the same transaction.

    Returns the release as it is now recorded.
    """
    if replaced not in ("superseded", "rolled_back"):
        raise ValueError(
            f"a replaced live release becomes superseded or rolled_back, not {replaced}"
        )
    now = db.now()
    with db.connect(data_dir) as conn:
        conn.execute(
            "UPDATE releases SET status = ?, updated_at = ?"
            " WHERE app = ? AND status = 'live' AND version != ?",
            (replaced, now, app, version),
        )
        conn.execute(
            "UPDATE releases SET status = 'live', reason = '', updated_at = ?"
            " WHERE app = ? AND version = ?",
            (now, app, version),
        )
        row = conn.execute(
            "SELECT * FROM releases WHERE app = ? AND version = ?", (app, version)
        ).fetchone()
    if row is None:
        raise NotFound(f"{app} has no release v{version}")
    return _row(row)


def mark(data_dir: Path, app: str, version: int, status: Status, reason: str = "") -> None:
    """Set a release's status (use mark_live to make one live)."""
    if status == "live":
        raise ValueError("use mark_live, which also retires the previous live release")
    with db.connect(data_dir) as conn:
        conn.execute(
            "UPDATE releases SET status = ?, reason = ?, updated_at = ?"
            " WHERE app = ? AND version = ?",
            (status, reason, db.now(), app, version),
        )


def rollback_target(data_dir: Path, app: str) -> Release:
    """The default rollback target: the newest release before the live one that was itself live."""
    current = live(data_dir, app)
    placeholders = ",".join("?" for _ in WAS_LIVE[1:])
    query = f"SELECT * FROM releases WHERE app = ? AND status IN ({placeholders})"  # noqa: S608
    params: list[Any] = [app, *WAS_LIVE[1:]]
    if current is not None:
        query += " AND version < ?"
        params.append(current.version)
    with db.connect(data_dir) as conn:
        row = conn.execute(query + " ORDER BY version DESC LIMIT 1", params).fetchone()
    if row is None:
        raise NotFound(
            f"app '{app}' has no earlier release that was live to roll back to;"
            f" name a version with `homeport rollback {app} vN`"
        )
    return _row(row)
