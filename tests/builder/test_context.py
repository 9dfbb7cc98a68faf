"""The build context tar read straight from a bare repository."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from homeport.builder import BuildError
from homeport.builder.context import spool_context
from homeport.errors import NotFound
from homeport.git import commits
from homeport.git.commits import MAX_LINK_BYTES, MAX_TREE_DEPTH, CommitTree, TreeError
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


def _plumb(repo: Path, *args: str, stdin: bytes = b"") -> str:
    """Run git plumbing in the bare repository; return its output."""
    result = subprocess.run(
        ["git", "--git-dir", str(repo), *args], input=stdin, capture_output=True, check=True
    )
    return result.stdout.decode().strip()


def _blob(repo: Path, content: bytes) -> str:
    return _plumb(repo, "hash-object", "-w", "--stdin", stdin=content)


def _tree(repo: Path, entries: list[tuple[str, str, str]], *, missing: bool = False) -> str:
    """`git mktree` from (mode, sha, name) entries; the mode gives the kind."""
    lines = "".join(
        f"{mode} {'tree' if mode == '040000' else 'commit' if mode == '160000' else 'blob'} "
        f"{sha}\t{name}\n"
        for mode, sha, name in entries
    )
    return _plumb(repo, "mktree", *(["--missing"] if missing else []), stdin=lines.encode())


def _commit(repo: Path, tree: str) -> str:
    return _plumb(
        repo,
        "-c",
        "user.name=Test",
        "-c",
        "user.email=test@example.invalid",
        "commit-tree",
        tree,
        "-m",
        "plumbing",
    )


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """An empty bare repository for plumbing-made commits."""
    path = tmp_path / "plumbing.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


def _nested(path: Path, depth: int) -> str:
    """A commit whose tree holds a Dockerfile and a file `depth` directories down (dulwich)."""
    repo = Repo(str(path))
    docker, leaf = Blob.from_string(b"FROM scratch\n"), Blob.from_string(b"deep\n")
    tree = Tree()
    tree.add(b"leaf.txt", 0o100644, leaf.id)
    objects = [docker, leaf, tree]
    for _ in range(depth - 1):
        tree = Tree()
        tree.add(b"d", 0o040000, objects[-1].id)
        objects.append(tree)
    root = Tree()
    root.add(b"Dockerfile", 0o100644, docker.id)
    root.add(b"d", 0o040000, objects[-1].id)
    repo.object_store.add_objects([(obj, None) for obj in [*objects, root]])
    repo.close()
    return _commit(path, root.id.decode())


def test_nesting_up_to_the_limit_is_read(bare: Path) -> None:
    """A file MAX_TREE_DEPTH directories down reaches the context."""
    commit = _nested(bare, MAX_TREE_DEPTH)
    members = _members(bare, commit)
    assert "/".join(["d"] * MAX_TREE_DEPTH) + "/leaf.txt" in members


@pytest.mark.parametrize("depth", [MAX_TREE_DEPTH + 1, 5000])
def test_trees_nested_past_the_limit_are_refused(bare: Path, depth: int) -> None:
    """Deeper nesting fails naming the limit, never with a RecursionError."""
    commit = _nested(bare, depth)
    with pytest.raises(TreeError, match=rf"nested deeper than {MAX_TREE_DEPTH} levels"):
        _members(bare, commit)


def test_directory_entry_pointing_at_a_blob_is_refused(tmp_path: Path) -> None:
    """A directory mode on a blob (which `git mktree` refuses to write) is a clear TreeError."""
    repo = Repo.init_bare(str(tmp_path / "evil.git"), mkdir=True)
    blob = Blob.from_string(b"not a tree")
    docker = Blob.from_string(b"FROM scratch\n")
    tree = Tree()
    tree.add(b"Dockerfile", 0o100644, docker.id)
    tree.add(b"lib", 0o040000, blob.id)
    for obj in (blob, docker, tree):
        repo.object_store.add_object(obj)
    repo.close()
    commit = _commit(tmp_path / "evil.git", tree.id.decode())
    with pytest.raises(TreeError, match="lib is a directory in the commit's tree but its object"):
        _members(tmp_path / "evil.git", commit)


def test_file_entry_pointing_at_a_tree_is_refused(tmp_path: Path) -> None:
    """A file mode on a tree object is a clear TreeError naming the file."""
    repo = Repo.init_bare(str(tmp_path / "evil.git"), mkdir=True)
    docker = Blob.from_string(b"FROM scratch\n")
    inner = Tree()
    inner.add(b"Dockerfile", 0o100644, docker.id)
    tree = Tree()
    tree.add(b"Dockerfile", 0o100644, docker.id)
    tree.add(b"app.py", 0o100644, inner.id)
    for obj in (docker, inner, tree):
        repo.object_store.add_object(obj)
    repo.close()
    commit = _commit(tmp_path / "evil.git", tree.id.decode())
    with pytest.raises(TreeError, match=r"app\.py is a file in the commit's tree but its object"):
        _members(tmp_path / "evil.git", commit)


@pytest.mark.parametrize("mode", ["100644", "040000"])
def test_missing_objects_are_refused(bare: Path, mode: str) -> None:
    """An entry whose object is not in the repository fails naming the entry."""
    docker = _blob(bare, b"FROM scratch\n")
    tree = _tree(
        bare,
        [("100644", docker, "Dockerfile"), (mode, "1" * 40, "gone")],
        missing=True,
    )
    with pytest.raises(TreeError, match=r"gone .* is missing from the repository"):
        _members(bare, _commit(bare, tree))


def test_duplicate_entries_are_refused(tmp_path: Path) -> None:
    """A tree listing one name twice (git fsck would object) is refused."""
    repo = tmp_path / "dup.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    docker = _blob(repo, b"FROM scratch\n")
    raw = b"".join(
        b"100644 " + name + b"\0" + bytes.fromhex(docker) for name in (b"Dockerfile", b"Dockerfile")
    )
    tree = _plumb(repo, "hash-object", "-t", "tree", "--literally", "-w", "--stdin", stdin=raw)
    with pytest.raises(TreeError, match="Dockerfile appears twice"):
        _members(repo, _commit(repo, tree))


def test_submodules_are_left_out(bare: Path) -> None:
    """A submodule entry (a commit not in this repository) is skipped, not looked up."""
    docker = _blob(bare, b"FROM scratch\n")
    tree = _tree(bare, [("100644", docker, "Dockerfile"), ("160000", "2" * 40, "vendor")])
    assert set(_members(bare, _commit(bare, tree))) == {"Dockerfile"}


def test_a_file_over_the_blob_limit_fails_naming_it_and_the_setting(git_app: GitApp) -> None:
    """Any file over HOMEPORT_MAX_BLOB_BYTES fails the build, even one .dockerignore drops."""
    commit = git_app.commit(
        {
            "Dockerfile": "FROM scratch\n",
            ".dockerignore": "videos\n",
            "videos/intro.mp4": b"\0" * (300 * 1024),
        }
    )
    with CommitTree(git_app.bare, commit, max_blob_bytes=256 * 1024) as tree:
        with pytest.raises(TreeError) as caught:
            spool_context(tree, dockerfile="Dockerfile")
    assert str(caught.value) == (
        "videos/intro.mp4 is 300 KB, over HOMEPORT_MAX_BLOB_BYTES (256 KB); remove it from "
        "the commit or raise the limit"
    )
    with CommitTree(git_app.bare, commit, max_blob_bytes=300 * 1024) as tree:
        assert "videos/intro.mp4" not in _tar_names(tree)


def _tar_names(tree: CommitTree, **kwargs: int) -> list[str]:
    with spool_context(tree, dockerfile="Dockerfile", **kwargs) as context:
        with tarfile.open(fileobj=context, mode="r|") as tar:
            return [member.name for member in tar]


def test_a_context_over_its_limit_fails(bare: Path) -> None:
    """One file at many paths costs a push nothing but fills the context: it is bounded."""
    docker = _blob(bare, b"FROM scratch\n")
    data = _blob(bare, b"x" * 100_000)
    inner = _tree(bare, [("100644", data, f"copy{i}") for i in range(20)])
    tree = _tree(
        bare, [("100644", docker, "Dockerfile"), *(("040000", inner, f"d{i}") for i in range(20))]
    )
    commit = _commit(bare, tree)
    with CommitTree(bare, commit) as commit_tree:
        with pytest.raises(BuildError, match=r"over HOMEPORT_MAX_CONTEXT_BYTES \(1 MB\) at d0/"):
            _tar_names(commit_tree, max_bytes=1024**2)
    with CommitTree(bare, commit) as commit_tree:
        assert len(_tar_names(commit_tree, max_bytes=64 * 1024**2)) == 1 + 20 + 400


def test_shared_subtrees_cannot_multiply_the_walk(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_TREE_ENTRIES paths the walk stops with a message, however few objects."""
    monkeypatch.setattr(commits, "MAX_TREE_ENTRIES", 1000)
    empty = _blob(bare, b"")
    inner = _tree(bare, [("100644", empty, f"f{i}") for i in range(100)])
    tree = _tree(bare, [("040000", inner, f"d{i}") for i in range(100)])
    with CommitTree(bare, _commit(bare, tree)) as commit_tree:
        with pytest.raises(TreeError, match="more than 1,000 files and directories"):
            list(commit_tree.walk())


def test_a_symlink_to_a_very_long_name_is_refused(bare: Path) -> None:
    """A symlink target longer than any system resolves fails the build naming the link."""
    docker = _blob(bare, b"FROM scratch\n")
    target = _blob(bare, b"x" * (MAX_LINK_BYTES + 1))
    tree = _tree(bare, [("100644", docker, "Dockerfile"), ("120000", target, "link")])
    with pytest.raises(
        BuildError, match=f"symlink link points to a name longer than {MAX_LINK_BYTES}"
    ):
        _members(bare, _commit(bare, tree))


# Builds the context of the commit in a fresh process and prints that process's peak RSS.
_PEAK_RSS = """
import sys
from pathlib import Path
from homeport.builder.context import spool_context
from homeport.git.commits import CommitTree
with CommitTree(Path(sys.argv[1]), sys.argv[2], max_blob_bytes=256 * 1024**2) as tree:
    with spool_context(tree, dockerfile="Dockerfile") as context:
        size = context.seek(0, 2)
status = Path("/proc/self/status").read_text()
peak = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
print(size, int(peak.split()[1]) // 1024)
"""


def test_a_128_mb_file_streams_into_the_context_in_bounded_memory(git_app: GitApp) -> None:
    """A 128 MB file goes into the tar in chunks: the process stays far below its size."""
    size = 128 * 1024**2
    commit = git_app.commit({"Dockerfile": "FROM scratch\n", "big.bin": b"\0" * size})
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(git_app.bare), commit],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    tar_bytes, peak_mb = int(out[0]), int(out[1])
    assert tar_bytes > size
    assert peak_mb < 100, f"peak RSS {peak_mb} MB while streaming a {size // 1024**2} MB file"
