"""Apps and their bare repositories under the data dir."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from dulwich import object_store as dulwich_object_store
from dulwich.objects import ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from homeport.errors import NotFound
from homeport.git import packs
from homeport.names import check_app_name

# dulwich chmods the pack files it writes to PACK_MODE (0444), past the umask that keeps
# everything else in the data dir private (homeport.datadir); read by the owner is all a pack
# needs.
dulwich_object_store.PACK_MODE = 0o400


def repos_dir(data_dir: Path) -> Path:
    return data_dir / "repos"


def repo_path(data_dir: Path, app: str) -> Path:
    return repos_dir(data_dir) / f"{check_app_name(app)}.git"


def exists(data_dir: Path, app: str) -> bool:
    return (repo_path(data_dir, app) / "objects").is_dir()


def open_repo(
    data_dir: Path, app: str, *, max_blob_bytes: int = packs.DEFAULT_MAX_BLOB_BYTES
) -> Repo:
    """The app's repository; packs pushed or fetched into it are stored in bounded memory."""
    path = repo_path(data_dir, app)
    if not (path / "objects").is_dir():
        raise NotFound(f"app {app!r} does not exist; push to it once to create it")
    return packs.open_repo(path, max_blob_bytes=max_blob_bytes)


def create_repo(data_dir: Path, app: str, branch: str) -> Repo:
    """Create the app's bare repository if missing (the first push creates the app).

    HEAD names the deploy branch, so a clone checks out what is live. Safe to call from
    several requests and processes at once: all of them get the one repository.
    """
    path = repo_path(data_dir, app)
    if (path / "objects").is_dir():
        return packs.open_repo(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Made whole in a directory of its own and renamed into place: a half-made repository is
    # never served, and of two first pushes the second rename fails, leaving the first's.
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        repo = Repo.init_bare(str(tmp))
        repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(f"refs/heads/{branch}".encode()))
        repo.close()
        try:
            os.rename(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return packs.open_repo(path)


def list_apps(data_dir: Path) -> list[str]:
    root = repos_dir(data_dir)
    if not root.is_dir():
        return []
    return sorted(
        p.name[: -len(".git")]
        for p in root.iterdir()
        if p.name.endswith(".git") and not p.name.startswith(".") and (p / "objects").is_dir()
    )


def has_commit(repo: Repo, sha: str) -> bool:
    return ObjectID(sha.encode()) in repo.object_store


def set_ref(repo: Repo, ref: str, sha: str) -> None:
    repo.refs[Ref(ref.encode())] = ObjectID(sha.encode())
