"""Real processes for tests: a private Redis, the homeport receiver and workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from homeport.redis_server import EmbeddedRedis

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
        for i in range(count):
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "homeport", "worker"],
                    env=self.env(),
                    stdout=self._log(f"worker{len(self.workers) + i}"),
                    stderr=subprocess.STDOUT,
                )
            )

    def stop_workers(self) -> None:
        for proc in self.workers:
            proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.server.kill()

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def wait_job(self, app: str, job_id: str, timeout: float = 120) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.api("GET", f"/api/apps/{app}/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "superseded"):
                return job  # type: ignore[no-any-return]
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} of {app} did not end in {timeout}s")


def flush(url: str) -> None:
    redis.Redis.from_url(url).flushall()


def children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent pid; the command name in field 2 may contain spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found
