"""The build context tar read straight from a bare repository."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from homeport.builder.context import spool_context
from homeport.commits import CommitTree, TreeError
from homeport.errors import NotFound
from tests.conftest import GitApp


def _members(repo: Path, commit: str, dockerfile: str = "Dockerfile") -> dict[str, tarfile.TarInfo]:
    with CommitTree(repo, commit) as tree, spool_context(tree, dockerfile=dockerfile) as context:
        with tarfile.open(fileobj=context, mode="r|") as tar:
            return {member.name: member for member in tar}


def _raw_commit(path: Path, entries: list[tuple[bytes, int, bytes]]) -> str:
    """A commit whose tree holds exactly the given (name, mode, content) entries."""
    repo = Repo.init_bare(str(path), mkdir=True)
    tree = Tree()
    for name, mode, content in entries:
        blob = Blob.from_string(content)
        repo.object_store.add_object(blob)
        tree.add(name, mode, blob.id)
    repo.object_store.add_object(tree)
    commit = Commit()
    commit.tree = tree.id
    commit.author = commit.committer = b"Test <test@example.invalid>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"raw\n"
    repo.object_store.add_object(commit)
    repo.close()
    return commit.id.decode()


def test_context_keeps_modes_symlinks_and_directories(git_app: GitApp) -> None:
    """Executables are 0755, other files 0644, symlinks are links, parents come first."""
    commit = git_app.commit(
        {"Dockerfile": "FROM scratch\n", "bin/tool": "#!/bin/sh\n", "web/index.html": "hi\n"},
        executable=["bin/tool"],
        symlinks={"web/home.html": "index.html"},
    )
    members = _members(git_app.bare, commit)
    names = list(members)
    assert names.index("bin") < names.index("bin/tool")
    assert members["bin"].isdir() and members["bin"].mode == 0o755
    assert members["bin/tool"].mode == 0o755
    assert members["web/index.html"].mode == 0o644
    assert members["web/index.html"].size == 3
    link = members["web/home.html"]
    assert link.issym() and link.linkname == "index.html"
    with CommitTree(git_app.bare, commit) as tree:
        assert {m.mtime for m in members.values()} == {tree.commit_time}


def test_context_leaves_out_ignored_files(git_app: GitApp) -> None:
    """.dockerignore removes files, and the Dockerfile in use is sent even when ignored."""
    commit = git_app.commit(
        {
            "deploy/Dockerfile": "FROM scratch\n",
            ".dockerignore": "deploy\n*.secret\n",
            "db.secret": "x",
            "app.py": "print()\n",
            "deploy/notes.txt": "n",
        }
    )
    members = _members(git_app.bare, commit, dockerfile="deploy/Dockerfile")
    assert set(members) == {".dockerignore", "app.py", "deploy", "deploy/Dockerfile"}


@pytest.mark.parametrize("name", [b"..", b".", b"a/../../etc", b"/etc", b".git", b""])
def test_context_refuses_entries_that_escape(tmp_path: Path, name: bytes) -> None:
    """A crafted tree entry such as '..' or an absolute name is refused, never written."""
    commit = _raw_commit(
        tmp_path / "evil.git",
        [(b"Dockerfile", 0o100644, b"FROM scratch\n"), (name, 0o100644, b"payload")],
    )
    with pytest.raises(TreeError, match="escape the build context"):
        _members(tmp_path / "evil.git", commit)


def test_unknown_commit_and_repository(git_app: GitApp, tmp_path: Path) -> None:
    """A commit that is not in the repository, or no repository, is NotFound."""
    git_app.commit({"Dockerfile": "FROM scratch\n"})
    with pytest.raises(NotFound, match="push it first"):
        CommitTree(git_app.bare, "0" * 40)
    with pytest.raises(NotFound, match="no git repository"):
        CommitTree(tmp_path / "nowhere", "0" * 40)
    with pytest.raises(NotFound, match="full commit id"):
        CommitTree(git_app.bare, "HEAD")


def test_big_context_spills_to_disk(git_app: GitApp) -> None:
    """A context past the spool size is written to a temporary file, not held in memory."""
    commit = git_app.commit({"Dockerfile": "FROM scratch\n", "big.bin": b"\0" * (20 * 1024**2)})
    with (
        CommitTree(git_app.bare, commit) as tree,
        spool_context(tree, dockerfile="Dockerfile") as c,
    ):
        assert c._rolled  # type: ignore[attr-defined]
        with tarfile.open(fileobj=c, mode="r|") as tar:
            sizes = {m.name: m.size for m in tar}
    assert sizes["big.bin"] == 20 * 1024**2
