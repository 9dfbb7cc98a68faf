"""Processes a test starts end with it: stopped, waited for, and named if they had to be killed.

A process left running past its test is garbage-collected still running (a ResourceWarning,
an error under `filterwarnings = error`) and keeps its ports, files and cluster objects.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeport.processes.jobprocess import children, descendants

__all__ = ["children", "descendants", "stop", "stop_all"]

# Seconds a homeport process may take to stop on SIGTERM: `homeport worker` and
# `homeport serve` stop within 10 s whatever they are doing.
STOP_SECONDS = 15.0


class KilledProcess(AssertionError):
    """A process a test started did not stop on its signal and had to be killed."""


@dataclass(frozen=True)
class Stopped:
    returncode: int
    stdout: Any
    stderr: Any


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def _leads_group(proc: subprocess.Popen[Any]) -> bool:
    try:
        return os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return False


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _signal(proc: subprocess.Popen[Any], sig: int) -> bool:
    """Send `sig` to the process, or to its whole group when it leads one; whether it does."""
    group = _leads_group(proc)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
    return group


def stop_all(
    named: list[tuple[subprocess.Popen[Any], str]],
    *,
    timeout: float = STOP_SECONDS,
    sig: int = signal.SIGTERM,
) -> list[Stopped]:
    """Send `sig` to every process at once, then wait for each and read its pipes.

    A process still running `timeout` s after the signal is killed with everything it
    started, then KilledProcess names it: a process that ignores its stop signal is a
    defect to see, not to hide.
    """
    groups = [_signal(proc, sig) for proc, _ in named]
    deadline = time.monotonic() + timeout
    stopped: list[Stopped] = []
    killed: list[str] = []
    for (proc, name), group in zip(named, groups, strict=True):
        if proc.stdin is not None and proc.stdin.closed:
            proc.stdin = None  # written and closed by its starter: communicate() would flush it
        try:
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            left = [proc.pid, *descendants(proc.pid)]
            shown = "; ".join(f"{pid}: {command_line(pid)[:120]}" for pid in left)
            kill_all(left)
            if group:
                _signal(proc, signal.SIGKILL)
            out, err = proc.communicate()
            killed.append(f"{name} ({shown})")
        if group:
            # What it started in its group (git's remote helper) goes with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        stopped.append(Stopped(proc.returncode, out, err))
    if killed:
        raise KilledProcess(
            f"did not stop within {timeout:.0f}s of {signal.Signals(sig).name} and were "
            f"killed: {', '.join(killed)}"
        )
    return stopped


def stop(
    proc: subprocess.Popen[Any],
    name: str,
    *,
    timeout: float = STOP_SECONDS,
    sig: int = signal.SIGTERM,
) -> Stopped:
    """stop_all() for one process."""
    return stop_all([(proc, name)], timeout=timeout, sig=sig)[0]
