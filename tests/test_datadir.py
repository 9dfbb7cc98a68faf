"""The data dir is private to the user homeport runs as."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from homeport.datadir import make_private


@pytest.fixture
def umask() -> Iterator[None]:
    """make_private sets the process umask: put the test process's back afterwards."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_an_existing_data_dir_is_made_private(tmp_path: Path, umask: None) -> None:
    """Group and other lose access to the dir and all in it; symlinks' targets are left alone."""
    outside = tmp_path / "outside.txt"
    outside.write_text("not homeport's")
    outside.chmod(0o644)
    data = tmp_path / "data"
    (data / "logs" / "blog").mkdir(parents=True)
    (data / "logs" / "blog" / "j.log").write_text("output")
    (data / "pack").write_text("pack")
    (data / "link").symlink_to(outside)
    for path, mode in (
        (data, 0o755),
        (data / "logs", 0o775),
        (data / "logs" / "blog", 0o755),
        (data / "logs" / "blog" / "j.log", 0o644),
        (data / "pack", 0o444),
    ):
        path.chmod(mode)
    make_private(data)
    assert _mode(data) == _mode(data / "logs") == _mode(data / "logs" / "blog") == 0o700
    assert _mode(data / "logs" / "blog" / "j.log") == 0o600
    assert _mode(data / "pack") == 0o400
    assert _mode(outside) == 0o644


def test_what_is_created_afterwards_is_private(tmp_path: Path, umask: None) -> None:
    """After make_private new files are 0600 and new directories 0700."""
    make_private(tmp_path / "new")
    assert _mode(tmp_path / "new") == 0o700
    (tmp_path / "new" / "dir").mkdir()
    (tmp_path / "new" / "file").write_text("x")
    assert _mode(tmp_path / "new" / "dir") == 0o700
    assert _mode(tmp_path / "new" / "file") == 0o600


def test_a_file_gone_during_the_walk_does_not_stop_start_up(
    tmp_path: Path, umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file removed between the walk listing it and its chmod (a worker's SQLite journal)
    is skipped; the rest is still made private."""
    data = tmp_path / "data"
    data.mkdir()
    kept = data / "kept.txt"
    kept.write_text("x")
    kept.chmod(0o644)
    real_walk = os.walk

    def walk_with_a_vanished_file(top: Path) -> Iterator[tuple[str, list[str], list[str]]]:
        for root, dirs, files in real_walk(top):
            yield root, dirs, ["homeport.db-journal", *files]

    monkeypatch.setattr("homeport.datadir.os.walk", walk_with_a_vanished_file)
    make_private(data)
    assert _mode(kept) == 0o600
