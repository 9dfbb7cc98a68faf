"""The data dir and its database."""

from __future__ import annotations

from pathlib import Path

from homeport import db


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
