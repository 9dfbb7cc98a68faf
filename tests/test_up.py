"""`homeport up`: embedded Redis, workers, generated token, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.gitwork import WorkTree
from tests.support.servers import children, free_port, wait_healthy


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_runs_everything_and_stops_cleanly(
    tmp_path: Path, docker_services: str, apps_namespace: str
) -> None:
    """up starts Redis and workers, takes a push with its generated token, and stops all."""
    from tests.support.cluster import KUBECONFIG

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(
        HOMEPORT_DATA_DIR=str(tmp_path / "data"),
        HOMEPORT_LISTEN=f"127.0.0.1:{port}",
        HOMEPORT_KUBECONFIG=str(KUBECONFIG),
        HOMEPORT_NAMESPACE=apps_namespace,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeport", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}"), "homeport up did not answer"
        token_file = tmp_path / "data" / "token"
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        assert oct((tmp_path / "data").stat().st_mode & 0o777) == "0o700"
        token = token_file.read_text().strip()
        work = WorkTree(tmp_path / "work")
        work.commit("first", **{"a.txt": "a"})
        result = work.push(f"http://git:{token}@127.0.0.1:{port}/git/blog.git")
        assert result.returncode == 0, result.stderr
        assert "-----> Building blog@" in result.stderr
        assert "-----> blog v1 is live" in result.stderr
        started = children(proc.pid)
        assert len(started) == 3  # redis-server and two workers
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert "homeport is up on" in out
    assert str(tmp_path / "data" / "token") in out
    assert token not in out
    assert not [pid for pid in started if _alive(pid)]


def test_up_refuses_a_listen_address_in_use(tmp_path: Path) -> None:
    """A taken port is one clear line and exit 1, before Redis or workers start."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
        env.update(HOMEPORT_DATA_DIR=str(tmp_path / "data"), HOMEPORT_LISTEN=f"127.0.0.1:{port}")
        result = subprocess.run(
            [sys.executable, "-m", "homeport", "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "data" / "redis").exists()


def test_up_without_buildkit_starts_and_says_what_to_install(
    tmp_path: Path, docker_services: str
) -> None:
    """Without the buildx plugin, up still serves, prints what to install, and a push fails
    with the same words."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(
        HOMEPORT_DATA_DIR=str(tmp_path / "data"),
        HOMEPORT_LISTEN=f"127.0.0.1:{port}",
        # A docker config of its own has no cli-plugins: the CLI finds no buildx.
        DOCKER_CONFIG=str(tmp_path / "docker-config"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeport", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}"), "homeport up did not answer"
        token = (tmp_path / "data" / "token").read_text().strip()
        work = WorkTree(tmp_path / "work")
        work.commit("first", **{"a.txt": "a"})
        result = work.push(f"http://git:{token}@127.0.0.1:{port}/git/blog.git")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert result.returncode != 0
    assert "homeport is up on" in out
    assert "warning: pushes will fail until BuildKit builds work" in out
    for text in (out, result.stderr):
        assert "`docker buildx version` failed" in text
        assert "docker-buildx-plugin" in text
