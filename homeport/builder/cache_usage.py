"""How many bytes the Docker engine's build cache holds, for /metrics.

Asked of the engine API directly (GET /system/df) rather than through the docker SDK: the
receiver answers scrapes and must not load the SDK for one number. The engine can take
seconds to answer (it sizes images and volumes too), so the figure is refreshed in the
background at most every REFRESH_SECONDS and a scrape waits for it at most WAIT_SECONDS.
An engine that is down or slow gives None, never an error.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from urllib.parse import urlsplit

from homeport.settings import docker_environ

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0
WAIT_SECONDS = 2.0
TIMEOUT = 30.0
_SOCKET = "/var/run/docker.sock"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _connection() -> http.client.HTTPConnection | None:
    host = docker_environ().get("DOCKER_HOST") or f"unix://{_SOCKET}"
    if host.startswith("unix://"):
        return _UnixConnection(host[len("unix://") :], TIMEOUT)
    parts = urlsplit(host)
    if parts.scheme == "tcp" and parts.hostname and not docker_environ().get("DOCKER_TLS_VERIFY"):
        return http.client.HTTPConnection(parts.hostname, parts.port or 2375, timeout=TIMEOUT)
    return None  # ssh:// or TLS engines: not measured


def measure() -> int | None:
    """Bytes of the engine's build cache now; None when the engine cannot say."""
    conn = _connection()
    if conn is None:
        return None
    try:
        conn.request("GET", "/system/df?type=build-cache")
        response = conn.getresponse()
        if response.status != 200:
            return None
        data = json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError) as exc:
        log.info("the Docker engine did not say how big its build cache is: %s", exc)
        return None
    finally:
        conn.close()
    if isinstance(data.get("BuilderSize"), int) and data["BuilderSize"] > 0:
        return int(data["BuilderSize"])
    entries = data.get("BuildCache") or []
    return sum(int(e.get("Size") or 0) for e in entries if not e.get("Shared"))


class CacheUsage:
    """The last measured figure, refreshed in the background; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: int | None = None
        self._measured = 0.0
        self._running: threading.Event | None = None

    def _refresh(self, done: threading.Event) -> None:
        value = measure()
        with self._lock:
            self._value, self._measured, self._running = value, time.monotonic(), None
        done.set()

    def get(self) -> int | None:
        with self._lock:
            stale = time.monotonic() - self._measured > REFRESH_SECONDS or not self._measured
            running = self._running
            if stale and running is None:
                running = self._running = threading.Event()
                threading.Thread(
                    target=self._refresh, args=(running,), name="build-cache-size", daemon=True
                ).start()
        if running is not None:
            running.wait(WAIT_SECONDS)
        with self._lock:
            return self._value
