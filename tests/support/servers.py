"""Real processes for tests: a private Redis, the homeport receiver and workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from homeport.processes.redis import EmbeddedRedis
from tests.support.processes import children, stop, stop_all
from tests.support.waiting import wait_until

TOKEN = "test-token-0123456789"
WEBHOOK_SECRET = "test-webhook-secret-0123"
GITLAB_TOKEN = "test-gitlab-token-4567"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_healthy(
    url: str, timeout: float = 30, alive: subprocess.Popen[bytes] | None = None
) -> bool:
    """Poll url/healthz until it answers 200; False on timeout or if `alive` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if alive is not None and alive.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def start_redis(directory: Path) -> EmbeddedRedis:
    server = EmbeddedRedis(directory / "redis.sock")
    server.start()
    return server


@dataclass
class PasswordRedis:
    """A real redis-server on 127.0.0.1 that requires a password (requirepass)."""

    password: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> PasswordRedis:
        from homeport.processes.redis import server_binary

        # The configuration arrives on stdin ("-"), so the password is in no command line.
        config = f"requirepass {self.password}\nbind 127.0.0.1\nport {self.port}\n"
        self.process = subprocess.Popen(
            [server_binary(), "-", "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(config.encode())
        self.process.stdin.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server with a password did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, "redis-server (with a password)")


def start_redis_with_password(password: str) -> PasswordRedis:
    """A redis-server on a free loopback port that refuses clients without `password`."""
    return PasswordRedis(password).start()


@dataclass
class Homeport:
    """A receiver process and its workers, all real, on a random loopback port."""

    data_dir: Path
    redis_url: str
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    server: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def remote(self, app: str, token: str = TOKEN) -> str:
        return f"http://git:{token}@127.0.0.1:{self.port}/git/{app}.git"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
        env.update(
            HOMEPORT_DATA_DIR=str(self.data_dir),
            HOMEPORT_LISTEN=f"127.0.0.1:{self.port}",
            HOMEPORT_REDIS_URL=self.redis_url,
            HOMEPORT_TOKEN=TOKEN,
            HOMEPORT_WEBHOOK_SECRET=WEBHOOK_SECRET,
            HOMEPORT_GITLAB_TOKEN=GITLAB_TOKEN,
            HOMEPORT_ALLOW_FILE_URLS="false",
        )
        env.update(self.extra_env)
        return env

    def _log(self, name: str) -> int:
        return os.open(self.data_dir / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def start(self, workers: int = 2) -> Homeport:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = subprocess.Popen(
            [sys.executable, "-m", "homeport", "serve"],
            env=self.env(),
            stdout=self._log("server"),
            stderr=subprocess.STDOUT,
        )
        self.start_workers(workers)
        if wait_healthy(self.url, 20, self.server):
            return self
        log = (self.data_dir / "server.log").read_text()
        raise RuntimeError(f"homeport serve did not start:\n{log}")

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "homeport", "worker"],
                    env=self.env(),
                    stdout=self._log(f"worker{len(self.workers)}"),
                    stderr=subprocess.STDOUT,
                )
            )

    def stop_workers(self) -> None:
        workers, self.workers = self.workers, []
        stop_all([(proc, f"homeport worker {proc.pid}") for proc in workers])

    def stop(self) -> None:
        """Stop the workers, then the receiver; fails naming any that had to be killed."""
        try:
            self.stop_workers()
        finally:
            if self.server is not None:
                server, self.server = self.server, None
                stop(server, "homeport serve")

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def wait_job(self, app: str, job_id: str, timeout: float = 120) -> dict[str, object]:
        def ended() -> dict[str, object] | None:
            job: dict[str, object] = self.api("GET", f"/api/apps/{app}/jobs/{job_id}").json()
            return job if job["status"] in ("succeeded", "failed", "superseded") else None

        done: dict[str, object] = wait_until(
            ended, timeout=timeout, what=f"job {job_id} of {app} to end", interval=0.1
        )
        return done


def flush(url: str) -> None:
    redis.Redis.from_url(url).flushall()


@dataclass
class Up:
    """`homeport up` as a user runs it: embedded Redis and workers under one process."""

    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def remote(self, app: str) -> str:
        return f"http://git:{TOKEN}@127.0.0.1:{self.port}/git/{app}.git"

    def start(self) -> Up:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
        env.update(
            HOMEPORT_DATA_DIR=str(self.data_dir),
            HOMEPORT_LISTEN=f"127.0.0.1:{self.port}",
            HOMEPORT_TOKEN=TOKEN,
            **self.extra_env,
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "homeport", "up"],
            env=env,
            stdout=os.open(self.data_dir / "up.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND),
            stderr=subprocess.STDOUT,
            text=True,
        )
        if not wait_healthy(self.url, 30):
            self.stop()
            raise RuntimeError("homeport up did not start:\n" + self.log())
        return self

    def log(self) -> str:
        return (self.data_dir / "up.log").read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        return stop(self.proc, "homeport up", sig=sig).returncode

    def processes(self, name: str) -> list[int]:
        """Children of `homeport up` whose command line contains `name`."""
        assert self.proc is not None
        found = []
        for pid in children(self.proc.pid):
            try:
                if name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except OSError:
                continue
        return found

    def job_processes(self) -> list[int]:
        """Running job processes: the children of the workers."""
        return [pid for worker in self.processes("worker") for pid in children(worker)]

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def job_log(self, app: str) -> str:
        """The output of the app's newest job ('' before it has one)."""
        listed = self.api("GET", f"/api/apps/{app}/jobs").json().get("jobs") or []
        if not listed:
            return ""
        return self.api("GET", f"/api/apps/{app}/jobs/{listed[0]['id']}/log").text
