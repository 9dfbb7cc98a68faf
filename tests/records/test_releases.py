"""The release record in SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from homeport.errors import NotFound
from homeport.records import db, releases
from homeport.release import Release

IMAGE = "127.0.0.1:5000/blog@sha256:" + "0f" * 32


def _new(tmp_path: Path, app: str = "blog", **kw: Any) -> Release:
    return releases.create(
        tmp_path,
        app=app,
        commit="c0ffee",
        image=IMAGE,
        config={"spec": {}},
        **kw,
    )


def test_versions_count_from_one_per_app(tmp_path: Path) -> None:
    """Each app numbers its releases v1, v2, ... independently."""
    assert [_new(tmp_path).version for _ in range(3)] == [1, 2, 3]
    assert _new(tmp_path, app="wiki").version == 1
    assert _new(tmp_path).status == "deploying"


def test_record_survives_a_restart(tmp_path: Path) -> None:
    """Releases are read back from disk by a fresh process (a new connection)."""
    first = _new(tmp_path, job_id="job-1")
    releases.mark_live(tmp_path, "blog", first.version)
    again = releases.get(tmp_path, "blog", 1)
    assert again.status == "live"
    assert again.job_id == "job-1"
    assert again.digest == "sha256:" + "0f" * 32
    assert db.path_in(tmp_path).exists()


def test_a_new_live_release_supersedes_the_old(tmp_path: Path) -> None:
    """Only one release is live; the one it replaced becomes superseded or rolled_back."""
    one, two, three = _new(tmp_path), _new(tmp_path), _new(tmp_path, rollback_of=1)
    releases.mark_live(tmp_path, "blog", one.version)
    releases.mark_live(tmp_path, "blog", two.version)
    assert releases.get(tmp_path, "blog", 1).status == "superseded"
    releases.mark_live(tmp_path, "blog", three.version, replaced="rolled_back")
    assert releases.get(tmp_path, "blog", 2).status == "rolled_back"
    live = releases.live(tmp_path, "blog")
    assert live is not None and live.version == 3 and live.rollback_of == 1


def test_the_database_refuses_two_live_releases(tmp_path: Path) -> None:
    """Even a buggy writer cannot leave two live releases of one app."""
    _new(tmp_path)
    _new(tmp_path)
    releases.mark_live(tmp_path, "blog", 1)
    with pytest.raises(sqlite3.IntegrityError), db.connect(tmp_path) as conn:
        conn.execute("UPDATE releases SET status = 'live' WHERE version = 2")


def test_unknown_version_is_not_found(tmp_path: Path) -> None:
    """Asking for a release that does not exist says which ones do."""
    _new(tmp_path)
    with pytest.raises(NotFound, match="v1 to v1"):
        releases.get(tmp_path, "blog", 9)
    with pytest.raises(NotFound, match="no releases yet"):
        releases.get(tmp_path, "wiki", 1)


def test_rollback_target_skips_releases_that_never_went_live(tmp_path: Path) -> None:
    """The default rollback target is the newest earlier release that was live."""
    for _ in range(4):
        _new(tmp_path)
    releases.mark_live(tmp_path, "blog", 1)
    releases.mark_live(tmp_path, "blog", 2)
    releases.mark(tmp_path, "blog", 3, "failed", "readiness probe failed")
    releases.mark_live(tmp_path, "blog", 4)
    assert releases.rollback_target(tmp_path, "blog").version == 2
    assert releases.get(tmp_path, "blog", 3).reason == "readiness probe failed"


def test_no_rollback_target_for_a_first_release(tmp_path: Path) -> None:
    """With nothing earlier that was live, the default rollback says how to name a version."""
    _new(tmp_path)
    releases.mark_live(tmp_path, "blog", 1)
    with pytest.raises(NotFound, match="name a version"):
        releases.rollback_target(tmp_path, "blog")


def test_deploying_lists_unsettled_releases(tmp_path: Path) -> None:
    """Releases left deploying are found for reconcile, optionally per app."""
    _new(tmp_path)
    _new(tmp_path, app="wiki")
    releases.mark_live(tmp_path, "wiki", 1)
    assert [(r.app, r.version) for r in releases.deploying(tmp_path)] == [("blog", 1)]
    assert releases.deploying(tmp_path, "wiki") == []
