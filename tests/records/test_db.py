"""The data dir and its database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from homeport.records import db, releases


def test_data_dir_is_private(tmp_path: Path) -> None:
    """The data dir ends up mode 0700, made new or found with a laxer mode."""
    fresh = tmp_path / "fresh" / "data"
    db.init(fresh)
    assert oct(fresh.stat().st_mode & 0o777) == "0o700"
    lax = tmp_path / "lax"
    lax.mkdir(mode=0o755)
    lax.chmod(0o755)
    db.init(lax)
    assert oct(lax.stat().st_mode & 0o777) == "0o700"


def test_an_older_database_gains_the_release_cause(tmp_path: Path) -> None:
    """Releases recorded before causes existed read as pushes; new ones keep their cause."""
    old = sqlite3.connect(db.path_in(tmp_path))
    old.executescript(
        "CREATE TABLE releases (app TEXT NOT NULL, version INTEGER NOT NULL, commit_sha TEXT"
        " NOT NULL, image TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL, reason TEXT"
        " NOT NULL DEFAULT '', rollback_of INTEGER, job_id TEXT, created_at REAL NOT NULL,"
        " updated_at REAL NOT NULL, PRIMARY KEY (app, version));"
        "INSERT INTO releases VALUES ('blog', 1, 'c', 'r/blog@sha256:1', '{}', 'live', '',"
        " NULL, NULL, 1.0, 1.0);"
    )
    old.close()
    db.init(tmp_path)
    db.init(tmp_path)  # the guard makes a second start a no-op
    assert releases.get(tmp_path, "blog", 1).cause == "push"
    made = releases.create(
        tmp_path, app="blog", commit="c", image="r/blog@sha256:1", config={}, cause="config"
    )
    assert releases.get(tmp_path, "blog", made.version).to_dict()["cause"] == "config"
