"""The data dir: private to the user homeport runs as.

It holds the token, the database, the repositories and the job logs, so no other local user
may read it: the directory is 0700, and whatever homeport creates in it is 0600 (files) or
0700 (directories). A umask does that for everything this process and its children (workers,
the embedded Redis, dulwich, SQLite's WAL files) create, except dulwich's pack files, whose
mode homeport.apps sets. A data dir made before is fixed at start-up.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from homeport.errors import ConfigError

log = logging.getLogger(__name__)

# Group and other lose every permission bit.
PRIVATE_UMASK = 0o077


def make_private(data_dir: Path, *, fix_existing: bool = True) -> None:
    """Create the data dir 0700, set the private umask, and (by default) take group and other
    access away from everything already in the data dir."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        _restrict(data_dir)
    except PermissionError as exc:
        raise ConfigError(
            f"HOMEPORT_DATA_DIR {data_dir}: cannot make it private ({exc.strerror}); run "
            "homeport as the directory's owner or chown it to that user"
        ) from None
    if not fix_existing:
        return
    for root, dirs, files in os.walk(data_dir):
        for name in dirs + files:
            path = Path(root) / name
            try:
                _restrict(path)
            except FileNotFoundError:
                # Gone since the walk listed it: SQLite's journal of a worker that started
                # beside this process, a job log segment rotated away.
                continue
            except PermissionError:
                log.warning("cannot make %s private: it belongs to another user", path)


def _restrict(path: Path) -> None:
    mode = path.lstat().st_mode
    # A symlink has no mode of its own to change (chmod would follow it out of the data dir).
    if stat.S_ISLNK(mode) or not mode & PRIVATE_UMASK:
        return
    path.chmod(stat.S_IMODE(mode) & ~PRIVATE_UMASK)
