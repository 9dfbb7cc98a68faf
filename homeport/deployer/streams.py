"""Streaming answers of the Kubernetes API (watches, followed logs): by line, closed on stop."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any


class ClosingOn:
    """Shut a streaming response down as soon as `stop` is set, so a watch ends promptly."""

    def __init__(self, stop: threading.Event, resp: Any) -> None:
        self._stop = stop
        self._resp = resp
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            if self._stop.wait(0.2):
                try:
                    self._resp.shutdown()
                except Exception:  # noqa: S110 - best effort on a dying connection
                    pass
                return

    def __enter__(self) -> ClosingOn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        try:
            self._resp.release_conn()
        except Exception:  # noqa: S110 - best effort on a dying connection
            pass


def byte_lines(resp: Any, stop: threading.Event | None = None) -> Iterator[bytes]:
    """The lines of a streaming response as they arrive, each with its newline (the last one
    may have none); ends with the body, or after the chunk during which `stop` was set."""
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line + b"\n"
        if stop is not None and stop.is_set():
            return
    if buffer:
        yield buffer


def json_lines(resp: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects of a streaming response, one per line (a watch's events)."""
    for line in byte_lines(resp):
        if line.strip():
            yield json.loads(line)
