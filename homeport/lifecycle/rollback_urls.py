"""Rollback hooks: a secret URL a monitor calls when an app breaks, to roll it back.

Safety rules, because an alert can be late, repeated or wrong:
- only while the live release is younger than the hook's `within` (a stale alert never
  undoes a release that has been fine for days);
- once per live release, whichever hooks fire and however often (a flapping monitor does
  not walk the app back through its history);
- never when the live release is itself a rollback (its target would be the release that
  was just rolled away from);
- "resolved" and test payloads of Alertmanager, Grafana and Uptime Kuma do nothing.
The URL's secret is kept only as a SHA-256 and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from homeport import lifecycle
from homeport.errors import Conflict, InvalidInput, NotFound
from homeport.records import db, releases
from homeport.settings import Settings

DEFAULT_WITHIN = 3600
# A release fine for a month is not one an alert should undo.
MAX_WITHIN = 30 * 24 * 3600
_WITHIN = re.compile(r"(\d+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Hook ids and secrets come from the URL: anything else is not one of ours.
_ID = re.compile(r"[0-9a-f]{12}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{20,100}")
# Compared against when the id is unknown, so both answers take the same time.
_NO_HASH = hashlib.sha256(b"no such hook").hexdigest()


@dataclass(frozen=True)
class Hook:
    id: str
    app: str
    within: int
    created_at: float
    last_used_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "app": self.app,
            "kind": "rollback",
            "within": self.within,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
        }


def parse_within(value: Any) -> int:
    """Seconds from 3600, "90s", "30m", "1h" or "2d"; InvalidInput saying what fits."""
    text = str(value).strip() if isinstance(value, str | int) and value is not True else ""
    match = _WITHIN.fullmatch(text.lower())
    seconds = int(match.group(1)) * _UNITS[match.group(2)] if match else 0
    if not 1 <= seconds <= MAX_WITHIN:
        raise InvalidInput(
            f"within must be a duration from 1s to {MAX_WITHIN // 86400}d, e.g. 90s, 30m, 1h or 2d"
        )
    return seconds


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _row(row: sqlite3.Row) -> Hook:
    return Hook(
        id=row["id"],
        app=row["app"],
        within=row["within_seconds"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
    )


def create(data_dir: Path, app: str, within: int) -> tuple[Hook, str]:
    """A new hook and its secret; the secret is returned once and never stored."""
    secret = secrets.token_urlsafe(32)
    hook = Hook(id=secrets.token_hex(6), app=app, within=within, created_at=db.now())
    with db.connect(data_dir) as conn:
        conn.execute(
            "INSERT INTO rollback_hooks (id, app, secret_sha256, within_seconds, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (hook.id, app, _hash(secret), within, hook.created_at),
        )
    return hook, secret


def path_of(hook: Hook, secret: str) -> str:
    return f"/hooks/rollback/{hook.id}/{secret}"


def for_app(data_dir: Path, app: str) -> list[Hook]:
    with db.connect(data_dir) as conn:
        rows = conn.execute(
            "SELECT * FROM rollback_hooks WHERE app = ? ORDER BY created_at", (app,)
        ).fetchall()
    return [_row(r) for r in rows]


def remove(data_dir: Path, hook_id: str) -> Hook:
    with db.connect(data_dir) as conn:
        row = conn.execute("SELECT * FROM rollback_hooks WHERE id = ?", (hook_id,)).fetchone()
        if row is None:
            raise NotFound(f"there is no hook {hook_id!r}; `homeport hooks list APP` shows them")
        conn.execute("DELETE FROM rollback_hooks WHERE id = ?", (hook_id,))
    return _row(row)


def find(data_dir: Path, hook_id: str, secret: str) -> Hook | None:
    """The hook when the id and secret match; None otherwise (which one is not said)."""
    row = None
    if _ID.fullmatch(hook_id):
        with db.connect(data_dir) as conn:
            row = conn.execute("SELECT * FROM rollback_hooks WHERE id = ?", (hook_id,)).fetchone()
    stored = row["secret_sha256"] if row is not None else _NO_HASH
    given = _hash(secret) if _SECRET.fullmatch(secret) else _hash("")
    same = hmac.compare_digest(given.encode(), stored.encode())
    return _row(row) if row is not None and same else None


def ignored(payload: Any) -> str | None:
    """Why a monitor's payload is not an alert to act on (resolved, up, a test), or None."""
    if not isinstance(payload, dict):
        return None
    for key in ("status", "state"):
        value = payload.get(key)
        # Alertmanager and Grafana send "resolved"; Grafana's legacy alerts "ok".
        if isinstance(value, str) and value.lower() in ("resolved", "ok"):
            return f'the alert is resolved ("{key}": "{value}")'
    if "heartbeat" in payload:
        beat = payload["heartbeat"]
        if beat is None:
            return "an Uptime Kuma test notification (no heartbeat)"
        if isinstance(beat, dict) and beat.get("status") == 1:
            return "Uptime Kuma reports the monitor up (heartbeat status 1)"
    return None


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}".removesuffix(".0") + unit
    return f"{seconds:.0f}s"


def fire(
    settings: Settings, conn: redis.Redis, hook: Hook, payload: Any
) -> lifecycle.Submitted | str:
    """Roll the hook's app back, or say why not; acts once per live release."""
    reason = ignored(payload)
    if reason is not None:
        return f"nothing done: {reason}"
    app = hook.app
    live = releases.live(settings.data_dir, app)
    if live is None:
        return f"nothing done: {app} has no live release"
    age = db.now() - live.updated_at
    if age > hook.within:
        return (
            f"nothing done: {app} v{live.version} has been live for {_age(age)}, longer than"
            f" this hook's {_age(hook.within)}; roll back by hand with `homeport rollback {app}`"
        )
    if live.rollback_of is not None:
        return (
            f"nothing done: {app} v{live.version} is itself a rollback to v{live.rollback_of};"
            f" roll back further by hand with `homeport rollback {app} vN`"
        )
    with db.connect(settings.data_dir) as tx:
        done = tx.execute(
            "SELECT version, job_id FROM hook_actions WHERE app = ?", (app,)
        ).fetchone()
        if done is not None and done["version"] == live.version:
            return (
                f"nothing done: {app} v{live.version} was rolled back by a hook already"
                f" (job {done['job_id']})"
            )
        tx.execute(
            "INSERT OR REPLACE INTO hook_actions (app, version, job_id, at) VALUES (?, ?, '', ?)",
            (app, live.version, db.now()),
        )
    try:
        submitted = lifecycle.submit_rollback(settings, conn, app=app, version=None, source="hook")
    except (Conflict, NotFound) as exc:
        _release_claim(settings.data_dir, app, live.version)
        return f"nothing done: {exc}"
    except BaseException:
        _release_claim(settings.data_dir, app, live.version)
        raise
    with db.connect(settings.data_dir) as tx:
        tx.execute("UPDATE hook_actions SET job_id = ? WHERE app = ?", (submitted.job.id, app))
        tx.execute("UPDATE rollback_hooks SET last_used_at = ? WHERE id = ?", (db.now(), hook.id))
    return submitted


def _release_claim(data_dir: Path, app: str, version: int) -> None:
    with db.connect(data_dir) as tx:
        tx.execute("DELETE FROM hook_actions WHERE app = ? AND version = ?", (app, version))
