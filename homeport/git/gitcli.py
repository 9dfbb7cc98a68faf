"""Running the git command line on an app's bare repository.

git streams what dulwich holds whole in memory: `index-pack` stores a pushed pack and
`cat-file` reads a file of any size in chunks. One place sets the options that keep those
processes small, caps their memory, and says what to do when git is not installed.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from homeport.errors import StageError

# Objects over this size are streamed instead of inflated whole (git's default is 512 MiB,
# so a 200 MB file would sit in memory in index-pack and cat-file).
BIG_FILE_THRESHOLD = "1m"
# Address space for one git process beyond twice the largest file homeport accepts (a delta
# is resolved with its base and result in memory). A pack can claim a delta result of any
# size; past this cap git fails cleanly ("out of memory") instead of exhausting the host.
MEMORY_HEADROOM = 512 * 1024**2
# A floor for that cap: git's own start-up and small objects need no more.
MIN_MEMORY = 1024**3
# Seconds git has to end on SIGTERM before it is killed: well within the few seconds a
# stopping job has (jobprocess.STOP_SECONDS).
STOP_SECONDS = 3

_OPTIONS = (
    f"core.bigFileThreshold={BIG_FILE_THRESHOLD}",
    # One thread and small caches: a homelab box has few cores and memory is the budget.
    "pack.threads=1",
    "core.deltaBaseCacheLimit=32m",
    "core.packedGitWindowSize=32m",
    "core.packedGitLimit=256m",
)


class GitError(StageError):
    """git is missing or could not read or store the repository."""


def memory_cap(max_blob_bytes: int) -> int:
    """Address-space cap of a git process when files may be up to max_blob_bytes."""
    return max(MIN_MEMORY, 2 * max_blob_bytes + MEMORY_HEADROOM)


def start(
    repo_path: Path,
    *args: str,
    memory: int,
    stdin: int | None = subprocess.PIPE,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
    stderr: int | IO[bytes] | None = subprocess.PIPE,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `git <args>` on the bare repository with homeport's options and a memory cap.

    The cap is set before the caller sends anything, so git has allocated nothing big yet.
    """
    command = ["git", "--git-dir", str(repo_path)]
    for option in _OPTIONS:
        command += ["-c", option]
    try:
        proc = subprocess.Popen(
            [*command, *args],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=env,
            # A group of its own, so stop() reaches what git starts: a fetch's remote helper
            # or ssh, which would otherwise hang on a host that stopped answering.
            process_group=0,
        )
    except FileNotFoundError:
        raise GitError(
            "the git command is not installed; homeport reads and stores repositories with "
            "it: install git (e.g. `apt install git`) and try again"
        ) from None
    try:
        resource.prlimit(proc.pid, resource.RLIMIT_AS, (memory, memory))
    except (ProcessLookupError, PermissionError):
        # Already gone: its exit status says why, and the caller reads that.
        pass
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a git process started by start() and close its pipes."""
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass
    if proc.poll() is None:
        # SIGTERM: git removes its temporary files on it.
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Whatever git left behind in its group (a remote helper waiting on the network).
    _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
