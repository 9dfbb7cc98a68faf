"""Job output: appended to files in the data dir as it happens, followed by readers.

The files are the source of truth, so output survives Redis and homeport restarts; readers
(the pushing git client, the log API) follow them by offset until the job has ended.

A job's output is capped (HOMEPORT_MAX_LOG_BYTES), so that a build printing without end
cannot fill the disk. The first half of the cap is kept in `<job>.log` (the head). Past it,
output goes to tail segments `<job>.tail/<offset>` of a quarter of the cap each, named by
where they start in the tail's output; only the newest two are kept. Readers show the head,
then a line saying how much was left out, then the tail: the start and the end of the job.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from homeport.masking import Masker
from homeport.terminal import printable

POLL_SECONDS = 0.05
# A follower whose job has printed nothing for a while (queued behind other apps' deploys)
# looks less often: a burst of pushes keeps dozens of them waiting at once.
IDLE_AFTER_SECONDS = 1.0
IDLE_POLL_SECONDS = 0.25
DEFAULT_MAX_BYTES = 10 * 1024**2
# One line longer than this is cut: a tail segment must hold several lines.
MAX_LINE_BYTES = 16 * 1024
LINE_CUT = " [line cut]"
# Readers hand out at most this much per read, so a large log streams.
CHUNK_BYTES = 64 * 1024


def log_path(data_dir: Path, app: str, job_id: str) -> Path:
    return data_dir / "logs" / app / f"{job_id}.log"


def tail_dir(path: Path) -> Path:
    """Where the tail segments of the log at `path` go once its head is full."""
    return path.with_suffix(".tail")


class JobLog:
    """Appends masked lines to one job's log, within `max_bytes`; safe to share between threads.

    One job has one writer at a time (the worker running it); its state is read from the
    files when the first line is written, so a job that runs again goes on where it was.
    """

    def __init__(
        self, path: Path, masker: Masker | None = None, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.path = path
        self.masker = masker or Masker()
        self.head_bytes = max_bytes // 2
        self.segment_bytes = max(1, max_bytes // 4)
        self.max_line = min(MAX_LINE_BYTES, self.segment_bytes)
        self._tail = tail_dir(path)
        self._lock = threading.Lock()
        self._loaded = False
        self._head_size = 0
        self._segment: int | None = None  # start offset of the segment written to
        self._segment_size = 0
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, line: str) -> None:
        self.write(line)

    def write(self, line: str) -> None:
        # A carriage return alone would let a line overwrite what came before it.
        text = printable(self.masker(line.rstrip("\n")).replace("\r", ""))
        data = text.encode("utf-8", "replace")
        if len(data) + 1 > self.max_line:
            cut = max(0, self.max_line - len(LINE_CUT) - 1)
            data = data[:cut].decode("utf-8", "ignore").encode() + LINE_CUT.encode()
        data += b"\n"
        with self._lock:
            self._load()
            if self._segment is None and self._head_size + len(data) <= self.head_bytes:
                _append(self.path, data)
                self._head_size += len(data)
                return
            self._append_tail(data)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            self._head_size = self.path.stat().st_size
        except FileNotFoundError:
            self._head_size = 0
        if self._tail.is_dir():
            segments = _segments(self._tail)
            self._segment = segments[-1] if segments else 0
            try:
                self._segment_size = (self._tail / str(self._segment)).stat().st_size
            except FileNotFoundError:
                self._segment_size = 0

    def _append_tail(self, data: bytes) -> None:
        if self._segment is None:
            self._tail.mkdir(exist_ok=True)
            self._segment, self._segment_size = 0, 0
        elif self._segment_size and self._segment_size + len(data) > self.segment_bytes:
            previous = self._segment
            self._segment += self._segment_size
            self._segment_size = 0
            # Only the newest two segments stay; a reader still behind them is told how
            # much it missed.
            for start in _segments(self._tail):
                if start < previous:
                    (self._tail / str(start)).unlink(missing_ok=True)
        _append(self._tail / str(self._segment), data)
        self._segment_size += len(data)


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


def _segments(directory: Path) -> list[int]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(name) for name in names if name.isascii() and name.isdigit())


def _read_lines(path: Path, offset: int) -> bytes:
    """Whole lines from `offset`, at most CHUNK_BYTES of them; FileNotFoundError if gone."""
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read(CHUNK_BYTES)
    # Hand out whole lines only; a partial last line waits for its newline (unless a
    # single line fills the chunk, as in logs written before lines were capped).
    cut = data.rfind(b"\n") + 1
    return data if cut == 0 and len(data) == CHUNK_BYTES else data[:cut]


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024**2:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024**2:.1f} MiB"


class _Reader:
    """Reads one job's log from the start: the head, a note on what was left out, the tail."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tail = tail_dir(path)
        self.offset = 0
        self.in_tail = False
        self.position = 0  # where this reader is in the tail's output

    def read(self) -> bytes:
        """The next lines; b"" when nothing more has been written yet."""
        if not self.in_tail:
            # Seen before reading: once the tail exists the head no longer grows, so
            # reading nothing from it then means the head is done.
            tail_started = self.tail.is_dir()
            try:
                chunk = _read_lines(self.path, self.offset)
            except FileNotFoundError:
                chunk = b""
            if chunk or not tail_started:
                self.offset += len(chunk)
                return chunk
            self.in_tail = True
        return self._read_tail()

    def _read_tail(self) -> bytes:
        note = b""
        while True:
            segments = _segments(self.tail)
            if not segments:
                return note
            if self.position < segments[0]:
                left_out = segments[0] - self.position
                note += (
                    f"       [... {_size(left_out)} of output left out here: the log keeps the "
                    "start and the end of a job (HOMEPORT_MAX_LOG_BYTES) ...]\n"
                ).encode()
                self.position = segments[0]
            current = max(start for start in segments if start <= self.position)
            try:
                chunk = _read_lines(self.tail / str(current), self.position - current)
            except FileNotFoundError:
                continue  # rotated away meanwhile: the note above will say so
            if chunk:
                self.position += len(chunk)
                return note + chunk
            newer = [start for start in segments if start > current]
            if not newer:
                return note
            # The segment is complete once a newer one exists: go on with that.
            self.position = max(self.position, newer[0])


def _stopped(timeout: float) -> str:
    return (
        f"-----> stopped waiting after {timeout:.0f}s (HOMEPORT_JOB_TIMEOUT plus a margin); "
        "the job has not ended: `homeport jobs APP JOB -f` follows it on"
    )


# Seconds a follower waits for its job to end once the receiver is stopping: a worker stopped
# beside it stops the job within about a second, and the follower then shows how it ended.
STOP_GRACE_SECONDS = 3.0
STOPPING_LINE = (
    "-----> homeport is stopping, so this stops waiting; the job goes on wherever its worker "
    "still runs: `homeport jobs APP JOB -f` follows it"
)


def _pause(quiet_for: float) -> float:
    """Seconds to wait before looking again: often while the job prints (a push's last line
    ends it), seldom while it waits behind other apps' jobs."""
    return POLL_SECONDS if quiet_for < IDLE_AFTER_SECONDS else IDLE_POLL_SECONDS


class _Wait:
    """When a follower gives up on a job that has not ended: its timeout, or a stopping
    receiver (after STOP_GRACE_SECONDS)."""

    def __init__(self, timeout: float | None, stopping: Callable[[], bool] | None) -> None:
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.stopping = stopping
        self.stop_at: float | None = None
        self.last_news = time.monotonic()

    def give_up(self) -> str | None:
        """The last line to show if the follower stops now, else None."""
        now = time.monotonic()
        if self.stop_at is None and self.stopping is not None and self.stopping():
            self.stop_at = now + STOP_GRACE_SECONDS
        if self.stop_at is not None and now > self.stop_at:
            return STOPPING_LINE
        if self.deadline is not None and now > self.deadline:
            return _stopped(self.timeout or 0)
        return None

    def pause(self) -> float:
        return (
            POLL_SECONDS if self.stop_at is not None else _pause(time.monotonic() - self.last_news)
        )


def follow(
    path: Path,
    ended: Callable[[], bool],
    *,
    timeout: float | None = None,
    stopping: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """Yield whole lines as they are written, until ended() is true and all is read.

    With a timeout, stop after that many seconds even if the job goes on, with a last
    line saying so; likewise soon after stopping() turns true.
    """
    reader = _Reader(path)
    wait = _Wait(timeout, stopping)
    while True:
        done = ended()
        chunk = reader.read()
        if chunk:
            yield from chunk.decode("utf-8", "replace").splitlines()
            wait.last_news = time.monotonic()
            continue
        if done:
            return
        last = wait.give_up()
        if last is not None:
            yield last
            return
        time.sleep(wait.pause())


async def follow_async(
    path: Path,
    ended: Callable[[], bool],
    *,
    timeout: float | None = None,
    stopping: Callable[[], bool] | None = None,
) -> AsyncIterator[bytes]:
    """Like follow(), for the API: yields raw chunks of whole lines."""
    reader = _Reader(path)
    wait = _Wait(timeout, stopping)

    def look() -> tuple[bool, bytes]:
        # One thread hop for both reads: a follower costs the event loop little.
        done = ended()
        return done, reader.read()

    while True:
        done, chunk = await asyncio.to_thread(look)
        if chunk:
            yield chunk
            wait.last_news = time.monotonic()
            continue
        if done:
            return
        last = wait.give_up()
        if last is not None:
            yield (last + "\n").encode()
            return
        await asyncio.sleep(wait.pause())
