"""What every request handler shares, and reading a body within a cap."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from starlette.requests import Request

from homeport.config import Settings
from homeport.receiver.throttle import Throttle


@dataclass(frozen=True)
class State:
    settings: Settings
    token: str
    redis: redis.Redis
    throttle: Throttle


def client_address(request: Request) -> str | None:
    # uvicorn puts X-Forwarded-For here only for connections from its trusted proxies
    # (loopback by default), so a client elsewhere cannot choose its own address.
    return request.client.host if request.client else None


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes `limit` bytes (nothing more is read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
