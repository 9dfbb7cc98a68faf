"""Job output: appended to a file in the data dir as it happens, followed by readers.

The file is the source of truth, so output survives Redis and homeport restarts; readers
(the pushing git client, the log API) follow it by offset until the job has ended.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path

# Values shorter than this are not masked: replacing "1" or "on" everywhere would garble
# output while hiding nothing worth hiding.
MIN_SECRET_LENGTH = 4
MASK = "***"
POLL_SECONDS = 0.05


def log_path(data_dir: Path, app: str, job_id: str) -> Path:
    return data_dir / "logs" / app / f"{job_id}.log"


class Masker:
    """Replaces secret values with *** in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted(set(self._secrets) | found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class JobLog:
    """Appends masked lines to one job's log file; safe to share between threads."""

    def __init__(self, path: Path, masker: Masker | None = None) -> None:
        self.path = path
        self.masker = masker or Masker()
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, line: str) -> None:
        self.write(line)

    def write(self, line: str) -> None:
        text = self.masker(line.rstrip("\n")).replace("\r", "")
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return b"", offset
    # Hand out whole lines only; a partial last line waits for its newline.
    cut = data.rfind(b"\n") + 1
    return data[:cut], offset + cut


def follow(path: Path, ended: Callable[[], bool], *, timeout: float | None = None) -> Iterator[str]:
    """Yield whole lines as they are written, until ended() is true and all is read."""
    offset = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done = ended()
        chunk, offset = _read_from(path, offset)
        if chunk:
            yield from chunk.decode("utf-8", "replace").splitlines()
            continue
        if done or (deadline is not None and time.monotonic() > deadline):
            return
        time.sleep(POLL_SECONDS)


async def follow_async(
    path: Path, ended: Callable[[], bool], *, offset: int = 0
) -> AsyncIterator[bytes]:
    """Like follow(), for the API: yields raw chunks of whole lines."""
    while True:
        done = await asyncio.to_thread(ended)
        chunk, offset = _read_from(path, offset)
        if chunk:
            yield chunk
            continue
        if done:
            return
        await asyncio.sleep(POLL_SECONDS * 4)
