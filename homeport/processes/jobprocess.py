"""Stopping a job process: SIGTERM, a few seconds to record its job as stopped, then SIGKILL.

A worker being stopped (by `homeport up`, a service manager or Kubernetes) stops its job
rather than waiting for it, since a deploy can take as long as HOMEPORT_JOB_TIMEOUT; the
job process raises Shutdown on SIGTERM and records its job as stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

# Seconds a job process has, after SIGTERM, to record its job as stopped before it is killed.
# A stopped worker is gone within about this long whatever it was doing: service managers
# and Kubernetes kill it outright soon after they ask.
STOP_SECONDS = 6.0


def running(pid: int) -> bool:
    """Whether the process runs (a zombie has ended: it only waits to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    """Direct children of a process (a worker's job process), from /proc."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children(todo.pop())
        found += below
        todo += below
    return found


def kill_group(pid: int) -> None:
    """SIGKILL the job process and every process it started.

    rq gives each job process a process group of its own, which its git commands inherit;
    a build runs in a session of its own, so descendants are killed by name too.
    """
    below = descendants(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for child in below:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGKILL)


def stop(pids: list[int], grace: float = STOP_SECONDS) -> list[int]:
    """SIGTERM the job processes, kill those still running after `grace` s; the killed ones."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    left = [pid for pid in pids if running(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [pid for pid in left if running(pid)]
    for pid in left:
        kill_group(pid)
    return left


# Signals whose handlers must run promptly: stop requests, and rq's job time limit (SIGALRM).
MAIN_THREAD_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGALRM})


def signals_to_main_thread() -> None:
    """From now on, every thread this process starts blocks the stop signals.

    The kernel hands a signal sent to a process to any thread that does not block it, and
    Python runs handlers only in the main thread, once that thread returns from the system
    call it waits in. A SIGTERM handed to a helper thread (a heartbeat, rq's Redis
    subscription) left the main thread waiting in a Redis read, or in wait4 for a whole
    deploy. New threads inherit their creator's mask, so blocking the signals while a
    thread starts keeps them for the main thread. A forked job process inherits this too.
    """
    original = threading.Thread.start
    if getattr(original, "masks_signals", False):
        return

    def start(self: threading.Thread) -> None:
        if threading.current_thread() is not threading.main_thread():
            original(self)  # started from a thread that blocks them already
            return
        before = signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)
        try:
            original(self)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)

    masked: Any = start
    masked.masks_signals = True
    threading.Thread.start = masked  # type: ignore[method-assign]
