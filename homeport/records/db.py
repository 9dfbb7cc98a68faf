"""The durable record: one SQLite file in the data dir, shared by the receiver and workers.

Redis only carries the queue; jobs and releases live here so that they survive a Redis
restart and a reinstall of the cluster side.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    kind TEXT NOT NULL,              -- deploy | rollback
    ref TEXT NOT NULL,               -- refs/heads/main
    commit_sha TEXT NOT NULL,
    old_sha TEXT NOT NULL,
    source TEXT NOT NULL,            -- push | github | gitea | gitlab | api
    params TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,            -- queued | running | succeeded | failed | superseded
    reason TEXT NOT NULL DEFAULT '',
    release INTEGER,
    image TEXT NOT NULL DEFAULT '',  -- REGISTRY/APP@sha256:... once pushed
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_app ON jobs (app, created_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,             -- provider:delivery-id, or sha256:<hex of the body>
    job_id TEXT,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries (received_at);
-- A signed rollback's signature works once; kept until its timestamp is too old anyway.
CREATE TABLE IF NOT EXISTS used_signatures (
    signature TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS used_signatures_expiry ON used_signatures (expires_at);
-- The one repository whose webhooks may deploy an app: provider:owner/name.
CREATE TABLE IF NOT EXISTS app_sources (
    app TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    bound_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
    app TEXT NOT NULL,
    version INTEGER NOT NULL,        -- per app, from 1
    commit_sha TEXT NOT NULL,
    image TEXT NOT NULL,             -- REGISTRY/REPO@sha256:...
    config TEXT NOT NULL,            -- JSON: run settings, env names, Secret name; no env values
    status TEXT NOT NULL,            -- deploying | live | failed | rolled_back | superseded
    reason TEXT NOT NULL DEFAULT '',
    rollback_of INTEGER,
    job_id TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (app, version)
);
-- At most one live release per app, enforced by the database itself.
CREATE UNIQUE INDEX IF NOT EXISTS releases_one_live ON releases (app) WHERE status = 'live';
-- Apps being removed (homeport apps destroy): no job of theirs may start meanwhile.
CREATE TABLE IF NOT EXISTS destroying (
    app TEXT PRIMARY KEY,
    started_at REAL NOT NULL
);
-- Failed cron runs (Kubernetes Job names) already announced, so each is told once.
CREATE TABLE IF NOT EXISTS cron_failures (
    job TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
-- How long each stage of a job took (fetch, build, rollout), for /metrics.
CREATE TABLE IF NOT EXISTS job_stages (
    job_id TEXT NOT NULL,
    app TEXT NOT NULL,
    stage TEXT NOT NULL,
    seconds REAL NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (job_id, stage)
);
-- Releases that failed and were rolled back automatically, and to which version.
CREATE TABLE IF NOT EXISTS auto_rollbacks (
    app TEXT NOT NULL,
    version INTEGER NOT NULL,
    restored INTEGER NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (app, version)
);
-- Monitor URLs that roll an app back; only a SHA-256 of each secret is kept.
CREATE TABLE IF NOT EXISTS rollback_hooks (
    id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    within_seconds INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL
);
CREATE INDEX IF NOT EXISTS rollback_hooks_app ON rollback_hooks (app);
-- The live release a hook rolled back, per app: hooks act once per live release.
CREATE TABLE IF NOT EXISTS hook_actions (
    app TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    at REAL NOT NULL
);
"""


def path_in(data_dir: Path) -> Path:
    return data_dir / "homeport.db"


_local = threading.local()


def _connection(data_dir: Path) -> sqlite3.Connection:
    # One long-lived connection per thread and database: opening and closing per request
    # would checkpoint the WAL (an fsync) every time the last connection closes.
    # A forked worker process must not use its parent's connections: start afresh.
    if getattr(_local, "pid", None) != os.getpid():
        _local.pid = os.getpid()
        _local.conns = {}
    cache: dict[Path, sqlite3.Connection] = _local.conns
    conn = cache.get(data_dir)
    if conn is None:
        data_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path_in(data_dir), timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        # WAL lets the API read while a worker writes; NORMAL sync survives a homeport
        # crash, and only a power cut can lose the last transactions, never corrupt the file.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        if data_dir in _background_checkpoints:
            conn.execute("PRAGMA wal_autocheckpoint=0")
        cache[data_dir] = conn
    return conn


_background_checkpoints: set[Path] = set()
CHECKPOINT_SECONDS = 2.0


def checkpoint_in_background(data_dir: Path) -> None:
    """Move WAL checkpoints (and their fsync) off this process's request path.

    A checkpoint runs inside whichever commit crosses the WAL threshold; on a disk that
    etcd and containerd keep busy its fsync can stall a webhook for 100+ ms. In the receiver
    a thread checkpoints instead, without blocking writers (PASSIVE).
    """
    if data_dir in _background_checkpoints:
        return
    _background_checkpoints.add(data_dir)

    def run() -> None:
        while True:
            time.sleep(CHECKPOINT_SECONDS)
            try:
                _connection(data_dir).execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint of %s failed: %s", data_dir, exc)

    threading.Thread(target=run, name="sqlite-checkpoint", daemon=True).start()


@contextmanager
def connect(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """The thread's connection; the outermost block is one transaction."""
    conn = _connection(data_dir)
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def read(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """The thread's connection for reads only: one consistent snapshot, no write lock.

    connect() takes the write lock at once (BEGIN IMMEDIATE), which a poll such as a waiting
    push's "has my job ended?" must not: dozens of them would queue behind the workers' writes.
    """
    conn = _connection(data_dir)
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN DEFERRED")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def init(data_dir: Path) -> None:
    """Create missing tables and indexes; safe on every start and on older databases."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # Repositories, job logs, the database and the token: for homeport's user alone, also
    # when the directory was made earlier with a laxer mode.
    data_dir.chmod(0o700)
    conn = sqlite3.connect(path_in(data_dir), timeout=30)
    try:
        conn.executescript(SCHEMA)
        _add_columns(conn)
    finally:
        conn.close()


# A removal that has not finished after this long died with its process; the app is free again.
DESTROY_STALE_SECONDS = 900


def being_destroyed(conn: sqlite3.Connection, app: str) -> bool:
    """Whether `homeport apps destroy` is removing the app right now."""
    row = conn.execute(
        "SELECT 1 FROM destroying WHERE app = ? AND started_at > ?",
        (app, now() - DESTROY_STALE_SECONDS),
    ).fetchone()
    return row is not None


def _add_columns(conn: sqlite3.Connection) -> None:
    """Columns added to tables after their first release; older databases get them here."""
    known = {row[1] for row in conn.execute("PRAGMA table_info(releases)")}
    if "cause" not in known:
        try:
            with conn:
                # push | webhook | rollback | config; rows from before were all pushes.
                conn.execute("ALTER TABLE releases ADD COLUMN cause TEXT NOT NULL DEFAULT 'push'")
        except sqlite3.OperationalError as exc:
            # Another process starting at the same moment added it first.
            if "duplicate column" not in str(exc):
                raise


def now() -> float:
    return time.time()
