"""`homeport up`: the receiver, a pool of workers and, by default, a private Redis, supervised."""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType

import uvicorn

from homeport.builder import buildkit
from homeport.builder.errors import BuildKitMissing
from homeport.errors import HomeportError
from homeport.processes import jobprocess
from homeport.processes.redis import EmbeddedRedis
from homeport.receiver.app import create_app
from homeport.receiver.stopping import Stopping
from homeport.records import db
from homeport.settings import Settings

log = logging.getLogger(__name__)


# How often the supervisor looks at what it started; the embedded Redis is back within
# about this long (plus its start, a few ms) of dying.
SUPERVISE_SECONDS = 0.5
# Seconds a worker has to exit once its job process has stopped.
WORKER_EXIT_SECONDS = 3.0
# Seconds uvicorn waits for open requests once stopping; pushes and streams that wait on a
# job end within joblog.STOP_GRACE_SECONDS of the stop, so this is only a backstop.
GRACEFUL_SECONDS = 8
# Listen hosts only this machine reaches.
LOOPBACK_HOSTS = frozenset({"localhost", "[::1]", "::1"})


class Supervisor:
    """Keeps what `homeport up` started running: worker processes and the embedded Redis.

    A crashed worker must not stop deploys, and a Redis the OOM killer picked must not
    fail every push until someone restarts homeport: each is started again within about
    a second. On stop, the workers stop their jobs (which record themselves as stopped) and
    exit, then Redis stops.
    """

    def __init__(self, count: int, env: dict[str, str], redis: EmbeddedRedis | None) -> None:
        self.count = count
        self.env = env
        self.redis = redis
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
        if self.redis is not None:
            self.redis.start()
        self.procs = [self._spawn() for _ in range(self.count)]
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(SUPERVISE_SECONDS):
            if self.redis is not None and not self.redis.running():
                log.warning("the embedded Redis exited; starting it again")
                try:
                    self.redis.start()
                except HomeportError as exc:
                    log.error("%s; trying again", exc)
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self._stop.is_set():
                    log.warning(
                        "worker %s exited with %s; restarting it", proc.pid, proc.returncode
                    )
                    self.procs[i] = self._spawn()

    def stop_workers(self) -> None:
        """SIGTERM every worker: each stops its job, which records itself as stopped."""
        self._stop.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()

    def stop(self) -> None:
        self.stop_workers()
        deadline = time.monotonic() + jobprocess.STOP_SECONDS + WORKER_EXIT_SECONDS
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not stop in time; killing it and its job", proc.pid)
                for job in jobprocess.children(proc.pid):
                    jobprocess.kill_group(job)
                proc.kill()
                proc.wait()
        if self.redis is not None:
            self.redis.stop()


class _Server(uvicorn.Server):
    """uvicorn's server, telling what waits on a job that homeport stops, once a signal comes.

    Pushes wait for their deploy and streams follow jobs and pods: told, each ends within a
    few seconds with a line that says so, instead of holding the stop up or being cut off.
    `on_exit` runs first: `homeport up` stops its workers there, so a waiting push ends with
    its job's own end ("stopped: homeport was shut down").
    """

    on_exit: Callable[[], object] | None = None
    stopping: Stopping | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.on_exit is not None:
            self.on_exit()
        if self.stopping is not None:
            self.stopping.set()
        super().handle_exit(sig, frame)


def serve(settings: Settings, token: str, on_exit: Callable[[], object] | None = None) -> None:
    """Run the receiver in this process until interrupted."""
    app = create_app(settings, token)
    server = _Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )
    )
    server.on_exit = on_exit
    server.stopping = app.state.homeport.stopping
    server.run()


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


# Seconds `homeport doctor` may take at start-up before its warnings are given up on.
DOCTOR_SECONDS = 120


def _doctor_warnings(settings: Settings, say: Callable[[str], None]) -> None:
    """Run `homeport doctor` beside the start-up and print what fails as warnings.

    In its own process: the checks load the Docker and Kubernetes clients, which the
    receiver would otherwise keep in memory for good.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-m", "homeport", "doctor", "--json"],
            env=settings.child_environ(redis_url=settings.queue_url),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=DOCTOR_SECONDS,
            check=False,
        )
        checks = json.loads(done.stdout)["checks"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as exc:
        log.warning("homeport doctor did not run at start-up: %s", exc)
        return
    for check in checks:
        if check.get("status") == "fail":
            say(f"  warning: {check['name']}: {check['detail']}; fix: {check['fix']}")


def _reachability(settings: Settings) -> list[str]:
    """What to set when the printed URLs will not work from another machine."""
    if settings.url:
        return []
    if settings.listens_everywhere:
        return [
            f"warning: HOMEPORT_URL is not set, so these URLs use this machine's name"
            f" ({settings.public_url}); if other machines know it by another name, set"
            " HOMEPORT_URL to that (e.g. http://box.lan:8080)"
        ]
    if settings.host in LOOPBACK_HOSTS or settings.host.startswith("127."):
        return [
            f"note: homeport listens on {settings.host} only, so other machines cannot push;"
            f" set HOMEPORT_LISTEN=0.0.0.0:{settings.port} and HOMEPORT_URL to this box's"
            " address to let them"
        ]
    return []


def up(settings: Settings, token: str, say: Callable[[str], None]) -> None:
    check_listen(settings)
    db.init(settings.data_dir)
    embedded: EmbeddedRedis | None = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.redis_socket)
        settings = replace(settings, redis_url=embedded.url)
    supervisor = Supervisor(
        settings.workers, settings.child_environ(redis_url=settings.queue_url), embedded
    )
    supervisor.start()
    # uvicorn re-raises SIGTERM after its graceful shutdown; make that an exception so the
    # workers and Redis below are stopped rather than orphaned.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    say(f"homeport is up on {settings.public_url}")
    try:
        buildkit.require()
    except BuildKitMissing as exc:
        # homeport still serves (config, logs, rollbacks); each push fails with this message.
        say(f"  warning: pushes will fail until BuildKit builds work: {exc}")
    say(f"  token: {settings.token_path if not settings.token else 'HOMEPORT_TOKEN'}")
    say(f"  git remote add homelab {settings.public_url}/git/<app>.git")
    say(f"  the CLI elsewhere: homeport login {settings.public_url}")
    for line in _reachability(settings):
        say(f"  {line}")
    threading.Thread(
        target=_doctor_warnings, args=(settings, say), name="doctor", daemon=True
    ).start()
    try:
        serve(settings, token, on_exit=supervisor.stop_workers)
    finally:
        supervisor.stop()
