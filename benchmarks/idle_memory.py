"""Idle memory of `homeport up` with its default settings: receiver, workers, embedded Redis.

Baseline in the same run: a bare Python interpreter. Prints each process's RSS and the
totals with and without Redis. --workers N sets HOMEPORT_WORKERS (default: homeport's own,
2). With --all: notifications set (an Apprise URL and the JSON webhook, so every worker runs
its dispatcher) and /metrics scraped once before measuring (prometheus-client loaded).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import rss_mb, scratch

from tests.support.servers import children, free_port, wait_healthy


def _command(pid: int) -> list[bytes]:
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")


def _is_worker(pid: int) -> bool:
    # Not Redis, nor the short-lived `homeport doctor` that up runs at start.
    return b"worker" in _command(pid)


def _is_redis(pid: int) -> bool:
    # Redis rewrites its title into argv[0]: "/path/redis-server unixsocket:..."
    return b"redis-server" in _command(pid)[0]


def main() -> None:
    work = scratch("memory")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_DATA_DIR=str(work), HOMEPORT_LISTEN=f"127.0.0.1:{port}")
    if "--workers" in sys.argv:
        env["HOMEPORT_WORKERS"] = sys.argv[sys.argv.index("--workers") + 1]
    everything = "--all" in sys.argv
    if everything:
        env.update(
            HOMEPORT_NOTIFY="ntfy://127.0.0.1:9/idle",
            HOMEPORT_NOTIFY_WEBHOOK="http://127.0.0.1:9/events",
            HOMEPORT_METRICS_PUBLIC="true",
        )
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    up = subprocess.Popen(
        [sys.executable, "-m", "homeport", "up"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}"), "homeport up did not answer"
        # Past the worker's first maintenance round (every 10 s), which it keeps in memory.
        time.sleep(12)
        if everything:
            scraped = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60)
            assert b"homeport_jobs" in scraped.read()
            time.sleep(1)
        receiver = rss_mb(up.pid)
        workers = [p for p in children(up.pid) if _is_worker(p)]
        worker = sum(rss_mb(p) for p in workers)
        redis = sum(rss_mb(p) for p in children(up.pid) if _is_redis(p))
        baseline = rss_mb(bare.pid)
    finally:
        up.terminate()
        up.wait(timeout=30)
        bare.kill()
        bare.wait()
    total = receiver + worker
    print(f"bare python:         {baseline:6.1f} MB")
    print(f"receiver:            {receiver:6.1f} MB")
    print(f"workers ({len(workers)}):         {worker:6.1f} MB")
    print(f"embedded Redis:      {redis:6.1f} MB")
    print(f"homeport's Python:   {total:6.1f} MB, {total / baseline:.1f}x bare python")
    print(f"with Redis:          {total + redis:6.1f} MB")


if __name__ == "__main__":
    main()
