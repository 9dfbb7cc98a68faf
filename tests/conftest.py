from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from homeport.redis_server import EmbeddedRedis
from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport, flush, start_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real Redis for the session, flushed around each test that uses it."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    flush(redis_server.url)
    yield redis_server.url
    flush(redis_server.url)


@pytest.fixture
def homeport(tmp_path: Path, redis_url: str) -> Iterator[Homeport]:
    """A running receiver with two workers."""
    hp = Homeport(data_dir=tmp_path / "data", redis_url=redis_url).start()
    yield hp
    hp.stop()


@pytest.fixture
def work(tmp_path: Path) -> WorkTree:
    return WorkTree(tmp_path / "work")
