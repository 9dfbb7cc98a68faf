"""A receiver process of its own, for tests that need no workers and no cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import Homeport


@pytest.fixture
def receiver(tmp_path: Path, redis_url: str) -> Iterator[Homeport]:
    """`homeport serve` on loopback with the test token and webhook secret; no workers."""
    hp = Homeport(data_dir=tmp_path / "data", redis_url=redis_url).start(workers=0)
    yield hp
    hp.stop()
