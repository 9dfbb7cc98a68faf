"""The build context: a directory of a commit's tree as a tar stream, minus what .dockerignore
(read from that directory, as Docker does) leaves out.

Read straight from the bare repository (no checkout), each file streamed from git into the
tar, so memory stays flat whatever the file sizes. File modes are kept, so executables stay
executable, and symlinks stay symlinks; the engine resolves them inside the context, never on
the host.
"""

from __future__ import annotations

import logging
import tarfile
import tempfile
from typing import IO

from homeport.builder.dockerignore import DockerIgnore
from homeport.builder.errors import BuildError
from homeport.git.commits import MAX_LINK_BYTES, CommitTree, Entry
from homeport.settings import show_size

log = logging.getLogger(__name__)

# Contexts up to this size stay in memory; bigger ones spill to a temporary file.
SPOOL_BYTES = 16 * 1024**2
# A .dockerignore is a handful of patterns; a bigger one is not read past this.
MAX_DOCKERIGNORE_BYTES = 256 * 1024


def _info(path: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def has_file(tree: CommitTree, path: str) -> bool:
    """Whether the commit has a file (or a symlink to one) at path."""
    entry = tree.lookup(path)
    return entry is not None and not entry.is_dir and not entry.is_submodule


def _tar_bytes(size: int) -> int:
    """What one member adds to the tar: a header block (two with a PAX header), the data."""
    return 1024 + -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def write_context(
    tree: CommitTree,
    out: IO[bytes],
    *,
    dockerfile: str,
    max_bytes: int | None = None,
    root: str = ".",
    extra: tuple[str, Entry] | None = None,
) -> int:
    """Write the tar context of the tree's `root` directory to out; return the files written.

    `dockerfile` is the Dockerfile's path inside the context, kept whatever .dockerignore
    says. `extra` adds one more file at a name of its own (a Dockerfile from outside the
    context). max_bytes bounds the tar (HOMEPORT_MAX_CONTEXT_BYTES): files are shared
    between paths for free in git, so a small push can name far more data than any disk holds.
    """
    prefix = "" if root == "." else root + "/"
    ignore = DockerIgnore("")
    entry = tree.lookup(prefix + ".dockerignore")
    # Only a regular file counts: a symlink's target would be read as patterns.
    if entry is not None and not (entry.is_dir or entry.is_submodule or entry.is_symlink):
        raw = tree.read(entry, MAX_DOCKERIGNORE_BYTES)
        ignore = DockerIgnore(
            raw.decode("utf-8", "replace"), always_keep=(dockerfile, ".dockerignore")
        )
    mtime = tree.commit_time
    written_dirs: set[str] = set()
    count = total = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:

        def add(path: str, entry: Entry) -> None:
            nonlocal count, total
            total += _tar_bytes(entry.size)
            if max_bytes is not None and total > max_bytes:
                raise BuildError(
                    f"the build context is over HOMEPORT_MAX_CONTEXT_BYTES "
                    f"({show_size(max_bytes)}) at {entry.path}; leave large files out with "
                    ".dockerignore or raise the limit"
                )
            _add_parents(tar, path, written_dirs, mtime)
            _add(tar, tree, path, entry, mtime)
            count += 1

        for entry in tree.walk(root if prefix else ""):
            path = entry.path[len(prefix) :]
            if entry.is_dir or ignore.ignored(path):
                continue
            if entry.is_submodule:
                log.info("build context: skipping submodule %s", entry.path)
                continue
            add(path, entry)
        if extra is not None:
            add(*extra)
    return count


def _add_parents(tar: tarfile.TarFile, path: str, written: set[str], mtime: int) -> None:
    parts = path.split("/")[:-1]
    for i in range(len(parts)):
        parent = "/".join(parts[: i + 1])
        if parent in written:
            continue
        info = _info(parent, mtime)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        written.add(parent)


def _add(tar: tarfile.TarFile, tree: CommitTree, path: str, entry: Entry, mtime: int) -> None:
    info = _info(path, mtime)
    if entry.is_symlink:
        target = tree.read(entry, MAX_LINK_BYTES + 1)
        if len(target) > MAX_LINK_BYTES:
            raise BuildError(
                f"the symlink {entry.path} points to a name longer than {MAX_LINK_BYTES} "
                "bytes; shorten it or replace it with a regular file"
            )
        info.type = tarfile.SYMTYPE
        info.mode = 0o777
        try:
            info.linkname = target.decode("utf-8")
        except UnicodeDecodeError:
            raise BuildError(
                f"the symlink {entry.path} points to a name that is not UTF-8; "
                "replace it with a regular file"
            ) from None
        tar.addfile(info)
        return
    info.mode = 0o755 if entry.is_executable else 0o644
    blob = tree.open(entry)
    info.size = blob.size
    tar.addfile(info, blob)


def spool_context(
    tree: CommitTree,
    *,
    dockerfile: str,
    max_bytes: int | None = None,
    root: str = ".",
    extra: tuple[str, Entry] | None = None,
) -> IO[bytes]:
    """The tree's build context as a tar file object positioned at its start; caller closes."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        count = write_context(
            tree, spool, dockerfile=dockerfile, max_bytes=max_bytes, root=root, extra=extra
        )
    except BaseException:
        spool.close()
        raise
    log.debug("build context: %d files, %d bytes", count, spool.tell())
    spool.seek(0)
    return spool
