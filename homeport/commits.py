"""Reading a commit's files straight from a bare repository (dulwich; no checkout, no git CLI).

Trees come from pushes, so they are untrusted: entry names are checked before they become paths.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from dulwich.errors import NotGitRepository
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from homeport.errors import NotFound, StageError

_HEX_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
# A hostile pack can hold tree entries that git itself would refuse to check out; none of
# these may reach a tar stream, where they would name a path outside the build context.
_BAD_NAMES = {b"", b".", b"..", b".git"}


class TreeError(StageError):
    """The commit's tree holds an entry homeport will not use."""


@dataclass(frozen=True)
class Entry:
    """One file, symlink, directory or submodule of a commit's tree."""

    path: str
    mode: int
    sha: bytes

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


class CommitTree:
    """The tree of one commit of a bare repository; use as a context manager."""

    def __init__(self, repo_path: Path, commit: str) -> None:
        if not _HEX_SHA.fullmatch(commit):
            raise NotFound(f"{commit!r} is not a full commit id; pass the 40-hex-digit sha")
        try:
            self._repo = Repo(str(repo_path))
        except (NotGitRepository, FileNotFoundError):
            raise NotFound(f"no git repository at {repo_path}") from None
        try:
            self.commit_time, self._tree = self._load(repo_path, commit)
        except BaseException:
            self._repo.close()
            raise

    def _load(self, repo_path: Path, commit: str) -> tuple[int, Tree]:
        try:
            obj = self._repo[commit.encode()]
        except KeyError:
            raise NotFound(f"commit {commit[:12]} is not in {repo_path}; push it first") from None
        if not isinstance(obj, Commit):
            raise NotFound(f"{commit[:12]} in {repo_path} is not a commit")
        tree = self._repo[obj.tree]
        if not isinstance(tree, Tree):
            raise TreeError(f"commit {commit[:12]} has no readable tree; push it again")
        return obj.commit_time, tree

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
        self._repo.close()

    def lookup(self, path: str) -> Entry | None:
        """The entry at a slash-separated path, or None when the commit has none there."""
        tree: Tree = self._tree
        parts = [p for p in path.split("/") if p]
        for i, part in enumerate(parts):
            try:
                mode, sha = tree[part.encode()]
            except KeyError:
                return None
            if i == len(parts) - 1:
                return Entry("/".join(parts), mode, sha)
            if not stat.S_ISDIR(mode):
                return None
            sub = self._repo[sha]
            assert isinstance(sub, Tree)
            tree = sub
        return Entry("", stat.S_IFDIR, self._tree.id)

    def walk(self) -> Iterator[Entry]:
        """Every entry, depth first, a directory before its contents, in git's name order."""
        yield from self._walk(self._tree, "")

    def _walk(self, tree: Tree, prefix: str) -> Iterator[Entry]:
        for item in tree.iteritems():
            name = _check_name(item.path, prefix)
            path = f"{prefix}/{name}" if prefix else name
            entry = Entry(path, item.mode, item.sha)
            yield entry
            if entry.is_dir:
                sub = self._repo[item.sha]
                assert isinstance(sub, Tree)
                yield from self._walk(sub, path)

    def read(self, entry: Entry) -> bytes:
        """The contents of a file, or the target of a symlink."""
        blob = self._repo[entry.sha]
        if not isinstance(blob, Blob):
            raise TreeError(f"{entry.path} in the commit is not a file")
        return blob.as_raw_string()
