"""Failed authentications per client address: past the limit, 429 until the minute ends.

Only a credential that was sent and was wrong counts (a wrong token or password, a bad
webhook signature, a bad signed rollback). A request without credentials is not a guess:
git asks without a password first on every push. A request that authenticates is never
counted and never delayed.

The counts live in this process's memory: the receiver is one process, so it sees every
request, and a flood of wrong guesses costs no disk or Redis round trip. A restart forgets
the counts, which gives a guesser at most another few tries against secrets of at least 16
characters. The table is bounded so that guesses from many addresses cannot grow memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.responses import JSONResponse

# More than LIMIT failures from one address inside one WINDOW block it for the rest of it.
LIMIT = 10
WINDOW = 60.0
# Addresses tracked at once (about 100 bytes each). When full, the oldest windows go first.
CAPACITY = 10_000


class Throttle:
    """Fixed one-minute windows of failed authentications, per client address.

    Thread-safe: the API runs on the event loop, the git remote on a thread pool.
    """

    def __init__(
        self,
        limit: int = LIMIT,
        window: float = WINDOW,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.capacity = capacity
        self.clock = clock
        self._lock = threading.Lock()
        # address -> [window start, failures]; ordered by window start.
        self._windows: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        """Addresses tracked now."""
        return len(self._windows)

    def retry_after(self, client: str | None) -> int:
        """Seconds until `client` may authenticate again; 0 when it is not blocked."""
        with self._lock:
            return self._blocked_for(client or "", self.clock())

    def failed(self, client: str | None) -> int:
        """Count a failed authentication; the seconds `client` is now blocked for, or 0."""
        key = client or ""
        now = self.clock()
        with self._lock:
            entry = self._windows.get(key)
            if entry is None or now >= entry[0] + self.window:
                self._make_room(now)
                self._windows[key] = [now, 1]
                self._windows.move_to_end(key)
            else:
                entry[1] += 1
            return self._blocked_for(key, now)

    def _blocked_for(self, key: str, now: float) -> int:
        entry = self._windows.get(key)
        if entry is None or entry[1] <= self.limit:
            return 0
        left = entry[0] + self.window - now
        return max(0, math.ceil(left))

    def _make_room(self, now: float) -> None:
        while self._windows:
            oldest_key, (start, _) = next(iter(self._windows.items()))
            if now < start + self.window and len(self._windows) < self.capacity:
                return
            del self._windows[oldest_key]


def too_many(retry_after: int) -> JSONResponse:
    return JSONResponse(
        {
            "error": f"too many failed authentications from this address; try again in "
            f"{retry_after} s with the right credentials"
        },
        status_code=429,
        headers={"Retry-After": str(retry_after)},
    )
