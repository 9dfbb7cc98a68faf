"""Apps: their names and their repositories in the data dir."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from homeport.apps import create_repo, list_apps
from homeport.names import AppNameError, check_app_name


@pytest.mark.parametrize("name", ["blog", "a", "my-app-2", "x" * 40])
def test_dns_labels_are_app_names(name: str) -> None:
    """Lower-case DNS labels up to 40 characters are accepted as they are."""
    assert check_app_name(name) == name


@pytest.mark.parametrize(
    "name", ["evil\n", "blog\n", "\nblog", "blog\r", "Blog", "-blog", "blog-", "a.b", "", "x" * 41]
)
def test_anything_else_is_refused(name: str) -> None:
    """The whole name must match: a trailing newline is refused like any other character."""
    with pytest.raises(AppNameError, match="is not allowed"):
        check_app_name(name)


NAMES = [f"race-{n}" for n in range(15)]


def _create_all(data_dir: Path, barrier: Any, failures: Any) -> None:
    """Create every app of NAMES, starting each at the same moment as the other creators."""
    for name in NAMES:
        barrier.wait(timeout=60)
        try:
            create_repo(data_dir, name, "main").close()
        except Exception as exc:  # reported to the test, which fails on any
            failures.put(f"{name}: {exc!r}")


def _assert_one_good_repository_each(data_dir: Path) -> None:
    assert sorted(p.name for p in (data_dir / "repos").iterdir()) == sorted(
        f"{name}.git" for name in NAMES
    )  # no half-made or temporary directories left behind
    for name in NAMES:
        repo = Repo(str(data_dir / "repos" / f"{name}.git"))
        try:
            assert repo.refs.get_symrefs()[b"HEAD"] == b"refs/heads/main"
        finally:
            repo.close()
    assert list_apps(data_dir) == sorted(NAMES)


def test_concurrent_creation_in_processes_leaves_one_good_repository(tmp_path: Path) -> None:
    """Six processes creating the same new apps at once all succeed with one repository each."""
    ctx = multiprocessing.get_context("spawn")
    barrier, failures = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_create_all, args=(tmp_path, barrier, failures)) for _ in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    assert failures.empty(), failures.get()
    _assert_one_good_repository_each(tmp_path)


def test_concurrent_creation_in_threads_leaves_one_good_repository(tmp_path: Path) -> None:
    """Eight threads creating the same new apps at once all succeed with one repository each."""
    barrier, failures = threading.Barrier(8), queue.Queue[str]()
    threads = [
        threading.Thread(target=_create_all, args=(tmp_path, barrier, failures)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures.empty(), failures.get()
    _assert_one_good_repository_each(tmp_path)
