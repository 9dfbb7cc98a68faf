"""A Redis with a password: everything uses it, nothing shows it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gitwork import WorkTree
from tests.support.processes import descendants, stop
from tests.support.servers import (
    Homeport,
    PasswordRedis,
    children,
    free_port,
    start_redis_with_password,
    wait_healthy,
)


@pytest.fixture
def password_redis() -> Iterator[PasswordRedis]:
    """A real redis-server on 127.0.0.1 that requires a fresh random password."""
    server = start_redis_with_password(f"pw-{secrets.token_hex(16)}")
    yield server
    server.stop()


def _proc_text(pid: int, name: str) -> str:
    try:
        return (Path("/proc") / str(pid) / name).read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(values)
    return env


def test_wrong_redis_password_is_a_clear_error_that_hides_it(
    tmp_path: Path, password_redis: PasswordRedis, work: WorkTree
) -> None:
    """A wrong password: the worker and a push say so in one line that never shows it."""
    wrong = f"wrong-{secrets.token_hex(8)}"
    url = password_redis.url.replace(password_redis.password, wrong)
    worker = subprocess.run(
        [sys.executable, "-m", "homeport", "worker", "--burst"],
        env=_env(HOMEPORT_DATA_DIR=str(tmp_path / "data"), HOMEPORT_REDIS_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 1
    assert worker.stderr.startswith("homeport: the worker cannot reach Redis at redis://:***@")
    assert "invalid username-password pair" in worker.stderr
    assert "check HOMEPORT_REDIS_URL" in worker.stderr
    assert "Traceback" not in worker.stderr
    assert wrong not in worker.stderr + worker.stdout
    hp = Homeport(data_dir=tmp_path / "data", redis_url=url).start(workers=0)
    try:
        work.commit("first", **{"index.html": "hello"})
        pushed = work.push(hp.remote(f"app-{uuid.uuid4().hex[:8]}"))
    finally:
        hp.stop()
    assert "deploy not queued (unavailable): cannot reach Redis" in pushed.stderr
    assert "check HOMEPORT_REDIS_URL" in pushed.stderr
    assert wrong not in pushed.stderr + pushed.stdout
    assert wrong not in (tmp_path / "data" / "server.log").read_text()


def test_up_uses_a_redis_with_a_password_and_never_shows_it(
    tmp_path: Path, password_redis: PasswordRedis, docker_services: str, apps_namespace: str
) -> None:
    """up with redis://:PASS@host: pushes deploy; PASS is in no argv, output or job log."""
    from tests.support.cluster import KUBECONFIG

    port = free_port()
    data = tmp_path / "data"
    token = f"token-{secrets.token_hex(12)}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeport", "up"],
        env=_env(
            HOMEPORT_DATA_DIR=str(data),
            HOMEPORT_LISTEN=f"127.0.0.1:{port}",
            HOMEPORT_REDIS_URL=password_redis.url,
            HOMEPORT_TOKEN=token,
            HOMEPORT_KUBECONFIG=str(KUBECONFIG),
            HOMEPORT_NAMESPACE=apps_namespace,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    password = password_redis.password
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}", alive=proc), "homeport up did not answer"
        app = f"app-{uuid.uuid4().hex[:8]}"
        work = WorkTree(tmp_path / "work")
        work.commit("first", **{"index.html": "hello"})
        pushed = work.push(f"http://git:{token}@127.0.0.1:{port}/git/{app}.git")
        assert pushed.returncode == 0, pushed.stderr
        assert f"-----> {app} v1 is live" in pushed.stderr
        processes = [proc.pid, *descendants(proc.pid)]
        workers = children(proc.pid)
        assert len(workers) == 2  # two workers and no Redis of its own
        for pid in processes:
            assert password not in _proc_text(pid, "cmdline"), _proc_text(pid, "cmdline")
        # The workers got it, through their environment.
        for pid in workers:
            assert f"HOMEPORT_REDIS_URL={password_redis.url}" in _proc_text(pid, "environ")
    finally:
        out = stop(proc, "homeport up").stdout
    assert "homeport is up on" in out
    assert password not in out + pushed.stderr + pushed.stdout
    for path in data.rglob("*.log"):
        assert password not in path.read_text(errors="replace"), path
