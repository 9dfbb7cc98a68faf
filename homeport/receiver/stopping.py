"""The receiver is stopping: whatever waits on a job or a stream stops waiting.

Pushes wait for their deploy and clients follow job output and pod logs, each on a thread
of its own. Set once, on the stop signal; each waiter either watches the flag itself
(`is_set`) or has its own event set with it (`watch`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Stopping:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._watchers: set[threading.Event] = set()

    def set(self) -> None:
        with self._lock:
            self._event.set()
            watchers = list(self._watchers)
        for event in watchers:
            event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    @contextmanager
    def watch(self, event: threading.Event) -> Iterator[None]:
        """Set `event` too when the receiver stops (at once if it is stopping already)."""
        with self._lock:
            self._watchers.add(event)
            if self._event.is_set():
                event.set()
        try:
            yield
        finally:
            with self._lock:
                self._watchers.discard(event)
