"""Reading a commit's files straight from a bare repository (no checkout).

Objects come from `git cat-file`: `--batch-check` tells an object's kind and size without
reading it, `--batch` streams its contents, so a file of any size passes through in bounded
memory. dulwich parses the commit and tree objects, which are size-checked first.

Trees come from pushes, so they are untrusted: entry names are checked before they become
paths; nesting, entry counts and object sizes have named limits; an entry whose object is
missing or of the wrong kind is refused with a message, never a crash.
"""

from __future__ import annotations

import re
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from dulwich.errors import ObjectFormatException
from dulwich.objects import Commit, parse_tree

from homeport.errors import NotFound, StageError
from homeport.git import gitcli
from homeport.settings import show_size

_HEX_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
# A hostile pack can hold tree entries that git itself would refuse to check out; none of
# these may reach a tar stream, where they would name a path outside the build context.
_BAD_NAMES = {b"", b".", b"..", b".git"}

# Directories nested deeper than this are refused: every level costs a tree read, and paths
# that deep outgrow what filesystems and the Docker engine accept anyway.
MAX_TREE_DEPTH = 200
# Files and directories one commit may hold. Trees can share subtrees, so a small pack can
# name millions of paths; this bounds the work (and tar headers) of one walk.
MAX_TREE_ENTRIES = 500_000
# A tree or commit object is parsed in memory: bound its size (a tree of this size lists
# about 400,000 entries).
MAX_TREE_BYTES = 16 * 1024**2
MAX_COMMIT_BYTES = 1024**2
# Symlink targets become tar link names; PATH_MAX is the most any system can resolve.
MAX_LINK_BYTES = 4096
# Reading past the start of an object costs this much at most; bigger rests restart git.
_DRAIN_BYTES = 1024**2
# Kind and size queries sent to git at once (well inside a pipe's buffer both ways).
_CHECK_BATCH = 256

_MALFORMED = "the commit is malformed; recreate it with git and push again"


class TreeError(StageError):
    """The commit's tree holds an entry homeport will not use."""


@dataclass(frozen=True)
class Entry:
    """One file, symlink, directory or submodule of a commit's tree."""

    path: str
    mode: int
    sha: bytes
    size: int = 0
    """Bytes of a file or symlink target as walk() found it; 0 for directories."""

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def is_submodule(self) -> bool:
        return self.mode & 0o170000 == 0o160000

    @property
    def is_executable(self) -> bool:
        return stat.S_ISREG(self.mode) and bool(self.mode & 0o100)

    @property
    def is_blob(self) -> bool:
        """A file or a symlink: something whose object is a blob."""
        return not (self.is_dir or self.is_submodule)


def _check_name(name: bytes, parent: str) -> str:
    if name in _BAD_NAMES or b"/" in name or b"\\" in name or b"\0" in name:
        shown = name.decode("utf-8", "replace")
        where = f" in {parent}/" if parent else ""
        raise TreeError(
            f"the commit holds a file named {shown!r}{where}, which would escape the build "
            "context; rewrite the history without it and push again"
        )
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        raise TreeError(
            f"the commit holds a file name that is not UTF-8 ({name!r}); rename it and push again"
        ) from None


def _shown(path: str) -> str:
    return path if len(path) <= 200 else "..." + path[-200:]


def blob_too_big(path: str, size: int, limit: int) -> str:
    """The message for a file over HOMEPORT_MAX_BLOB_BYTES."""
    shown, cap = show_size(size), show_size(limit)
    if shown == cap:
        shown, cap = f"{size} bytes", f"{limit} bytes"
    return (
        f"{_shown(path)} is {shown}, over HOMEPORT_MAX_BLOB_BYTES ({cap}); remove it from "
        "the commit or raise the limit"
    )


class _CatFile:
    """Two `git cat-file` processes on one repository: kinds and sizes, and contents."""

    def __init__(self, repo_path: Path, memory: int) -> None:
        self._path = repo_path
        self._memory = memory
        self._check: subprocess.Popen[bytes] | None = None
        self._batch: subprocess.Popen[bytes] | None = None
        # Bytes of the current object's contents (and its trailing newline) not yet read.
        self._unread = 0
        # Counts open() calls, so a reader of an earlier object cannot read the current one.
        self.opened = 0

    def close(self) -> None:
        for proc in (self._check, self._batch):
            if proc is not None:
                gitcli.stop(proc)
        self._check = self._batch = None

    def _start(self, mode: str) -> subprocess.Popen[bytes]:
        return gitcli.start(
            self._path, "cat-file", mode, memory=self._memory, stderr=subprocess.DEVNULL
        )

    def _failed(self, proc: subprocess.Popen[bytes]) -> gitcli.GitError:
        gitcli.stop(proc)
        return gitcli.GitError(
            f"git could not read the repository {self._path.name} (exit status "
            f"{proc.returncode}); push the commit again, or check the repository on the "
            "homeport host"
        )

    def info(self, shas: list[bytes]) -> list[tuple[str, int] | None]:
        """(kind, size) of each object, None for a missing one; nothing is read."""
        if self._check is None:
            self._check = self._start("--batch-check")
        proc = self._check
        assert proc.stdin is not None and proc.stdout is not None
        found: list[tuple[str, int] | None] = []
        for i in range(0, len(shas), _CHECK_BATCH):
            chunk = shas[i : i + _CHECK_BATCH]
            try:
                proc.stdin.write(b"".join(sha + b"\n" for sha in chunk))
                proc.stdin.flush()
                for sha in chunk:
                    found.append(self._header(proc, sha))
            except (OSError, ValueError):
                self._check = None
                raise self._failed(proc) from None
        return found

    @staticmethod
    def _header(proc: subprocess.Popen[bytes], sha: bytes) -> tuple[str, int] | None:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        parts = line.split()
        if len(parts) == 2 and parts[0] == sha and parts[1] == b"missing":
            return None
        if len(parts) != 3 or parts[0] != sha:
            raise ValueError(f"unexpected answer from git cat-file: {line[:100]!r}")
        return parts[1].decode(), int(parts[2])

    def open(self, sha: bytes) -> tuple[str, int] | None:
        """Start reading an object; its contents follow through read()."""
        self._discard()
        self.opened += 1
        if self._batch is None:
            self._batch = self._start("--batch")
        proc = self._batch
        assert proc.stdin is not None
        try:
            proc.stdin.write(sha + b"\n")
            proc.stdin.flush()
            header = self._header(proc, sha)
        except (OSError, ValueError):
            self._batch = None
            raise self._failed(proc) from None
        if header is not None:
            self._unread = header[1] + 1
        return header

    def read(self, size: int) -> bytes:
        """Up to size bytes of the open object's contents; b"" at its end."""
        proc = self._batch
        left = self._unread - 1
        if proc is None or left <= 0:
            return b""
        assert proc.stdout is not None
        data = proc.stdout.read(min(size, left))
        if not data:
            self._batch = None
            raise self._failed(proc)
        self._unread -= len(data)
        return data

    def _discard(self) -> None:
        """Skip what is left of the open object, so the next answer starts cleanly."""
        proc = self._batch
        if proc is None or not self._unread:
            return
        assert proc.stdout is not None
        if self._unread > _DRAIN_BYTES:
            gitcli.stop(proc)
            self._batch = None
        else:
            while self._unread:
                data = proc.stdout.read(min(self._unread, 65536))
                if not data:
                    gitcli.stop(proc)
                    self._batch = None
                    break
                self._unread -= len(data)
        self._unread = 0


class BlobReader:
    """A file's contents as a file object, streamed from git; read it before the next one."""

    def __init__(self, objects: _CatFile, size: int) -> None:
        self._objects = objects
        self._serial = objects.opened
        self.size = size

    def read(self, size: int = -1) -> bytes:
        if self._serial != self._objects.opened:
            raise ValueError("this file was read after another one was opened")
        return self._objects.read(self.size if size < 0 else size)


class CommitTree:
    """The tree of one commit of a bare repository; use as a context manager.

    With max_blob_bytes, walk() refuses files over that size (HOMEPORT_MAX_BLOB_BYTES).
    """

    def __init__(self, repo_path: Path, commit: str, *, max_blob_bytes: int | None = None) -> None:
        if not _HEX_SHA.fullmatch(commit):
            raise NotFound(f"{commit!r} is not a full commit id; pass the 40-hex-digit sha")
        if not (repo_path / "objects").is_dir():
            raise NotFound(f"no git repository at {repo_path}")
        self.max_blob_bytes = max_blob_bytes
        memory = gitcli.memory_cap(max_blob_bytes or MAX_TREE_BYTES)
        self._objects = _CatFile(repo_path, memory)
        try:
            self.commit_time, self._tree = self._load(repo_path, commit)
        except BaseException:
            self._objects.close()
            raise

    def _load(self, repo_path: Path, commit: str) -> tuple[int, bytes]:
        header = self._objects.open(commit.encode())
        if header is None:
            raise NotFound(f"commit {commit[:12]} is not in {repo_path}; push it first")
        kind, size = header
        if kind != "commit":
            raise NotFound(f"{commit[:12]} in {repo_path} is not a commit")
        if size > MAX_COMMIT_BYTES:
            raise TreeError(
                f"commit {commit[:12]} is {show_size(size)}, over the "
                f"{show_size(MAX_COMMIT_BYTES)} homeport reads; shorten its message and push again"
            )
        raw = self._read_all(size)
        try:
            parsed = Commit.from_raw_string(Commit.type_num, raw)
            assert isinstance(parsed, Commit)
            tree, when = parsed.tree, int(parsed.commit_time)
        except Exception:  # dulwich's parser raises assorted errors on hostile input
            raise TreeError(f"commit {commit[:12]} cannot be read; {_MALFORMED}") from None
        if not isinstance(tree, bytes) or not _HEX_SHA.fullmatch(tree.decode("ascii", "replace")):
            raise TreeError(f"commit {commit[:12]} names no tree; {_MALFORMED}")
        return when, tree

    def __enter__(self) -> CommitTree:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._objects.close()

    def _read_all(self, size: int) -> bytes:
        chunks = []
        while size > 0:
            data = self._objects.read(min(size, 1024**2))
            chunks.append(data)
            size -= len(data)
        return b"".join(chunks)

    def _children(self, sha: bytes, path: str, depth: int) -> list[Entry]:
        """The entries of the tree at path (depth directories down), in git's order."""
        where = path or "the root directory"
        if depth > MAX_TREE_DEPTH:
            raise TreeError(
                f"the commit's directories are nested deeper than {MAX_TREE_DEPTH} levels "
                f"(at {_shown(path)}); flatten them and push again"
            )
        header = self._objects.open(sha)
        if header is None:
            raise TreeError(
                f"the object of {where} ({sha[:12].decode()}) is missing from the repository; "
                "push the commit again"
            )
        kind, size = header
        if kind != "tree":
            raise TreeError(
                f"{_shown(where)} is a directory in the commit's tree but its object is a "
                f"{kind}; {_MALFORMED}"
            )
        if size > MAX_TREE_BYTES:
            raise TreeError(
                f"{_shown(where)} lists more entries than homeport reads (its tree object is "
                f"{show_size(size)}, the limit {show_size(MAX_TREE_BYTES)}); split it into "
                "subdirectories and push again"
            )
        raw = self._read_all(size)
        try:
            items = list(parse_tree(raw, 20))
        except (ObjectFormatException, ValueError):
            raise TreeError(f"the tree of {_shown(where)} cannot be read; {_MALFORMED}") from None
        entries: list[Entry] = []
        names: set[str] = set()
        for name, mode, child in items:
            text = _check_name(name, path)
            if text in names:
                where = f"{path}/{text}" if path else text
                raise TreeError(f"{_shown(where)} appears twice in its tree; {_MALFORMED}")
            names.add(text)
            entries.append(Entry(f"{path}/{text}" if path else text, mode, child))
        # git's order: a directory sorts as if its name ended in '/'.
        entries.sort(key=lambda e: e.path + "/" if e.is_dir else e.path)
        return entries

    def _sized(self, entries: list[Entry]) -> list[Entry]:
        """The entries with the sizes of their files, refusing missing, mistyped or big ones."""
        blobs = [e for e in entries if e.is_blob]
        infos = self._objects.info([e.sha for e in blobs])
        sizes: dict[str, int] = {}
        for entry, info in zip(blobs, infos, strict=True):
            if info is None:
                raise TreeError(
                    f"the object of {_shown(entry.path)} ({entry.sha[:12].decode()}) is missing "
                    "from the repository; push the commit again"
                )
            kind, size = info
            if kind != "blob":
                raise TreeError(
                    f"{_shown(entry.path)} is a file in the commit's tree but its object is a "
                    f"{kind}; {_MALFORMED}"
                )
            if self.max_blob_bytes is not None and size > self.max_blob_bytes:
                raise TreeError(blob_too_big(entry.path, size, self.max_blob_bytes))
            sizes[entry.path] = size
        return [
            Entry(e.path, e.mode, e.sha, sizes[e.path]) if e.path in sizes else e for e in entries
        ]

    def lookup(self, path: str) -> Entry | None:
        """The entry at a slash-separated path, or None when the commit has none there."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return Entry("", stat.S_IFDIR, self._tree)
        sha, prefix = self._tree, ""
        for depth in range(1, len(parts) + 1):
            wanted = "/".join(parts[:depth])
            children = self._children(sha, prefix, depth - 1)
            entry = next((e for e in children if e.path == wanted), None)
            if entry is None:
                return None
            if depth == len(parts):
                return entry
            if not entry.is_dir:
                return None
            sha, prefix = entry.sha, entry.path
        return None

    def walk(self, under: str = "") -> Iterator[Entry]:
        """Every entry, depth first, a directory before its contents, in git's name order.

        `under` names a directory (a lookup() path) to walk instead of the whole tree;
        entries keep their full paths.
        """
        top = self.lookup(under)
        if top is None or not top.is_dir:
            return
        depth = len([p for p in under.split("/") if p])
        stack = [iter(self._sized(self._children(top.sha, top.path, depth)))]
        count = 0
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            count += 1
            if count > MAX_TREE_ENTRIES:
                raise TreeError(
                    f"the commit holds more than {MAX_TREE_ENTRIES:,} files and directories; "
                    "deploy from a smaller repository"
                )
            yield entry
            if entry.is_dir:
                # The directory is len(stack) levels below `under`.
                children = self._children(entry.sha, entry.path, depth + len(stack))
                stack.append(iter(self._sized(children)))

    def _open_blob(self, entry: Entry) -> int:
        header = self._objects.open(entry.sha)
        if header is None:
            raise TreeError(
                f"the object of {_shown(entry.path)} ({entry.sha[:12].decode()}) is missing "
                "from the repository; push the commit again"
            )
        kind, size = header
        if kind != "blob":
            raise TreeError(f"{_shown(entry.path)} in the commit is not a file; {_MALFORMED}")
        return size

    def read(self, entry: Entry, limit: int) -> bytes:
        """At most `limit` bytes of a file, or of a symlink's target."""
        size = self._open_blob(entry)
        return self._read_all(min(size, limit))

    def open(self, entry: Entry) -> BlobReader:
        """A file's contents as a stream; read it whole before asking for anything else."""
        return BlobReader(self._objects, self._open_blob(entry))
