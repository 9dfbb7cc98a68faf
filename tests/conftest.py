"""Shared fixtures: apps in real git repositories (work tree pushed to a bare repo)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from homeport.processes.redis import EmbeddedRedis
from tests.support.gitwork import WorkTree
from tests.support.processes import stop_all
from tests.support.servers import Homeport, flush, start_redis

# The local test cluster's fixtures (kube, namespace, push_image) for every test package,
# and the headless browser (chrome) of the status page's tests.
pytest_plugins = ["tests.support.cluster", "tests.support.browser"]

_GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
_GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [*_GIT, *args], cwd=cwd, env=_GIT_ENV, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


class GitApp:
    """An app's work tree and the bare repository it is pushed to, as homeport stores it."""

    def __init__(self, root: Path) -> None:
        self.work = root / "work"
        self.bare = root / "app.git"
        self.work.mkdir(parents=True)
        git("init", "-q", "-b", "main", str(self.work), cwd=root)
        git("init", "-q", "--bare", str(self.bare), cwd=root)

    def commit(
        self,
        files: Mapping[str, str | bytes],
        *,
        executable: Iterable[str] = (),
        symlinks: Mapping[str, str] | None = None,
        remove: Iterable[str] = (),
        message: str = "change",
    ) -> str:
        """Write files, commit them, push to the bare repository; return the commit id."""
        for name, content in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                content = content.encode()
            path.write_bytes(content)
            path.chmod(0o644)
        for name in executable:
            (self.work / name).chmod(0o755)
        for name, target in (symlinks or {}).items():
            link = self.work / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)
        for name in remove:
            git("rm", "-q", "-r", name, cwd=self.work)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "-q", str(self.bare), "main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every process the test (or its fixtures) started has ended when it ends.

    One left running keeps ports, files and cluster objects, and is garbage-collected still
    running; here it is stopped, and the test fails naming it. Session fixtures' processes
    start before this fixture and are not watched.
    """
    started: list[subprocess.Popen[Any]] = []
    original = subprocess.Popen.__init__

    def watched(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        started.append(self)

    monkeypatch.setattr(subprocess.Popen, "__init__", watched)
    yield
    monkeypatch.undo()
    left = [proc for proc in started if proc.poll() is None]
    if left:
        named = [(proc, _shown(proc.args)) for proc in left]
        stop_all(named, timeout=5)
        pytest.fail(f"processes outlived the test: {', '.join(name for _, name in named)}")


def _shown(args: object) -> str:
    words = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
    return " ".join(words)[:120]


@pytest.fixture
def git_app(tmp_path: Path) -> GitApp:
    """A fresh app repository."""
    return GitApp(tmp_path / "app")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real Redis for the session, flushed around each test that uses it."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    flush(redis_server.url)
    yield redis_server.url
    flush(redis_server.url)


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def docker_services() -> str:
    """Docker engine and registry running, the local base image built; returns its tag."""
    subprocess.run([ROOT / "scripts" / "services", "up"], check=True)
    out = subprocess.run(
        [ROOT / "scripts" / "base-image"], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


@pytest.fixture
def apps_namespace(kube: object) -> Iterator[str]:
    """A namespace name of the test's own for HOMEPORT_NAMESPACE, deleted afterwards."""
    # Imported here: pytest loads tests.support.cluster as a plugin (assertion rewriting).
    from tests.support.cluster import delete_namespace

    name = f"hp-{uuid.uuid4().hex[:10]}"
    yield name
    delete_namespace(name)


@pytest.fixture
def homeport(
    tmp_path: Path, redis_url: str, docker_services: str, apps_namespace: str
) -> Iterator[Homeport]:
    """A running receiver with two workers, deploying to the test cluster."""
    from tests.support.cluster import KUBECONFIG

    hp = Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        extra_env={"HOMEPORT_KUBECONFIG": str(KUBECONFIG), "HOMEPORT_NAMESPACE": apps_namespace},
    ).start()
    yield hp
    hp.stop()


@pytest.fixture
def start_receiver(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., Homeport]]:
    """start_receiver(HOMEPORT_X=...): `homeport serve` with those settings, no workers."""
    started: list[Homeport] = []

    def start(**env: str) -> Homeport:
        hp = Homeport(
            data_dir=tmp_path / f"receiver{len(started)}", redis_url=redis_url, extra_env=env
        )
        started.append(hp.start(workers=0))
        return hp

    yield start
    for hp in started:
        hp.stop()


@pytest.fixture
def receiver(start_receiver: Callable[..., Homeport]) -> Homeport:
    """`homeport serve` on loopback with the test token and webhook secret; no workers."""
    return start_receiver()


@pytest.fixture
def work(tmp_path: Path) -> WorkTree:
    return WorkTree(tmp_path / "work")
