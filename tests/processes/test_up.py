"""`homeport up`: embedded Redis, workers, generated token, clean stop."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.gitwork import WorkTree
from tests.support.processes import stop
from tests.support.servers import children, free_port, wait_healthy


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _env(data_dir: Path, port: int, apps_namespace: str | None = None) -> dict[str, str]:
    """The test's environment without HOMEPORT_* settings, then homeport's for this run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_DATA_DIR=str(data_dir), HOMEPORT_LISTEN=f"127.0.0.1:{port}")
    if apps_namespace is not None:
        from tests.support.cluster import KUBECONFIG

        env.update(HOMEPORT_KUBECONFIG=str(KUBECONFIG), HOMEPORT_NAMESPACE=apps_namespace)
    return env


def test_up_runs_everything_and_stops_cleanly(
    tmp_path: Path, docker_services: str, apps_namespace: str
) -> None:
    """up starts Redis and workers, takes a push with its generated token, and stops all."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeport", "up"],
        env=_env(tmp_path / "data", port, apps_namespace),
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
        out = stop(proc, "homeport up").stdout
    assert f"homeport is up on http://127.0.0.1:{port}" in out
    assert str(tmp_path / "data" / "token") in out
    assert f"git remote add homelab http://127.0.0.1:{port}/git/<app>.git" in out
    assert f"the CLI elsewhere: homeport login http://127.0.0.1:{port}" in out
    assert f"set HOMEPORT_LISTEN=0.0.0.0:{port} and HOMEPORT_URL" in out  # loopback only
    assert token not in out
    assert not [pid for pid in started if _alive(pid)]


def test_up_refuses_a_listen_address_in_use(tmp_path: Path) -> None:
    """A taken port is one clear line and exit 1, before Redis or workers start."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "homeport", "up"],
            env=_env(tmp_path / "data", port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "data" / "redis").exists()


@contextlib.contextmanager
def _up(data_dir: Path, apps_namespace: str) -> Iterator[tuple[str, str]]:
    """`homeport up` with a generated token on the test cluster; yields its URL and token."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeport", "up"],
        env=_env(data_dir, port, apps_namespace),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}", alive=proc), "homeport up did not answer"
        yield f"127.0.0.1:{port}", (data_dir / "token").read_text().strip()
    finally:
        stop(proc, "homeport up")


def test_generated_token_and_config_values_are_masked(
    tmp_path: Path, docker_services: str, apps_namespace: str
) -> None:
    """A build that echoes the generated token and a `homeport config` value shows ***."""
    value = "cfg-" + uuid.uuid4().hex
    with _up(tmp_path / "data", apps_namespace) as (address, token):
        answer = httpx.post(
            f"http://{address}/api/apps/blog/config",
            json={"set": {"API_KEY": value}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        work = WorkTree(tmp_path / "work")
        work.commit(
            "echo",
            Dockerfile=f'FROM homeport-base:busybox\nRUN echo "token={token} key={value}"\n'
            'COPY . /www\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n',
        )
        result = work.push(f"http://git:{token}@{address}/git/blog.git")
        assert result.returncode == 0, result.stderr
        job = httpx.get(
            f"http://{address}/api/apps/blog/jobs", headers={"Authorization": f"Bearer {token}"}
        ).json()["jobs"][0]
        log = httpx.get(
            f"http://{address}/api/apps/blog/jobs/{job['id']}/log",
            headers={"Authorization": f"Bearer {token}"},
        ).text
    for text in (result.stderr, log):
        assert 'RUN echo "token=*** key=***"' in text
        assert text.count("token=*** key=***") >= 2  # the step, and what it printed
        assert token not in text and value not in text


def test_the_data_dir_and_all_in_it_are_private(
    tmp_path: Path, docker_services: str, apps_namespace: str
) -> None:
    """up makes an existing data dir 0700 and all it creates there 0600/0700, Redis's too."""
    data_dir = tmp_path / "data"
    (data_dir / "old").mkdir(parents=True)
    (data_dir / "old" / "notes.txt").write_text("from before")
    for path, mode in ((data_dir, 0o755), (data_dir / "old", 0o755)):
        path.chmod(mode)
    (data_dir / "old" / "notes.txt").chmod(0o644)
    with _up(data_dir, apps_namespace) as (address, token):
        work = WorkTree(tmp_path / "work")
        work.commit("first", **{"a.txt": "a"})
        result = work.push(f"http://git:{token}@{address}/git/blog.git")
        assert result.returncode == 0, result.stderr
        # While it runs: the database's WAL files and the embedded Redis's files exist.
        found = {p.relative_to(data_dir).as_posix(): p.lstat().st_mode for p in data_dir.rglob("*")}
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in (
        "token",
        "homeport.db",
        "homeport.db-wal",
        "repos/blog.git/HEAD",
        "redis/redis.log",
        "redis/redis.sock",
        "old/notes.txt",
    ):
        assert name in found, sorted(found)
    assert any(name.startswith("logs/blog/") for name in found)
    assert any(name.startswith("repos/blog.git/objects/") for name in found)
    assert any(name.startswith("redis/appendonlydir/") for name in found)
    loose = {
        name: oct(stat.S_IMODE(mode))
        for name, mode in found.items()
        if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077
    }
    assert loose == {}


def test_up_without_buildkit_starts_and_says_what_to_install(
    tmp_path: Path, docker_services: str, apps_namespace: str
) -> None:
    """Without the buildx plugin, up still serves, prints what to install, and a push fails
    with the same words."""
    port = free_port()
    env = _env(tmp_path / "data", port, apps_namespace)
    # A docker config of its own has no cli-plugins: the CLI finds no buildx.
    env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
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
        out = stop(proc, "homeport up").stdout
    assert result.returncode != 0
    assert "homeport is up on" in out
    assert "warning: pushes will fail until BuildKit builds work" in out
    for text in (out, result.stderr):
        assert "`docker buildx version` failed" in text
        assert "docker-buildx-plugin" in text
