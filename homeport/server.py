"""`homeport up`: the receiver, a pool of workers and, by default, a private Redis."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace

import uvicorn

from homeport import db
from homeport.config import Settings
from homeport.errors import HomeportError
from homeport.receiver.app import create_app
from homeport.redis_server import EmbeddedRedis

log = logging.getLogger(__name__)


class WorkerPool:
    """Worker processes, restarted if one dies (a crashed worker must not stop deploys)."""

    def __init__(self, count: int, env: dict[str, str]) -> None:
        self.count = count
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "homeport", "worker", "--exit-with-parent"],
            env=self.env,
            stdin=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.count)]
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(2):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self._stop.is_set():
                    log.warning(
                        "worker %s exited with %s; restarting it", proc.pid, proc.returncode
                    )
                    self.procs[i] = self._spawn()

    def stop(self) -> None:
        self._stop.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def serve(settings: Settings, token: str) -> None:
    """Run the receiver in this process until interrupted."""
    app = create_app(settings, token)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        # Pushes wait for their deploy; allow them to finish when stopping.
        timeout_graceful_shutdown=30,
    )


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def check_listen(settings: Settings) -> None:
    """Fail before starting anything when the listen address is taken."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((settings.host, settings.port))
    except OSError as exc:
        raise HomeportError(
            f"cannot listen on {settings.listen} ({exc.strerror}): is another homeport running? "
            "Stop it or set HOMEPORT_LISTEN to a free address"
        ) from None


def up(settings: Settings, token: str, say: Callable[[str], None]) -> None:
    check_listen(settings)
    db.init(settings.data_dir)
    embedded: EmbeddedRedis | None = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.redis_socket)
        embedded.start()
        settings = replace(settings, redis_url=embedded.url)
    pool = WorkerPool(settings.workers, settings.child_environ(redis_url=settings.queue_url))
    pool.start()
    # uvicorn re-raises SIGTERM after its graceful shutdown; make that an exception so the
    # workers and Redis below are stopped rather than orphaned.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    say(f"homeport is up on {settings.public_url}")
    say(f"  token: {settings.token_path if not settings.token else 'HOMEPORT_TOKEN'}")
    say(f"  git remote add homelab {settings.public_url}/git/<app>.git")
    try:
        serve(settings, token)
    finally:
        pool.stop()
        if embedded is not None:
            embedded.stop()
