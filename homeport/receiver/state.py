"""What every request handler shares, and reading a JSON body within a cap."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis
from starlette.requests import Request

from homeport.receiver.stopping import Stopping
from homeport.receiver.throttle import Throttle
from homeport.settings import Settings


@dataclass(frozen=True)
class State:
    settings: Settings
    token: str
    redis: redis.Redis
    throttle: Throttle
    stopping: Stopping


def client_address(request: Request) -> str | None:
    # uvicorn puts X-Forwarded-For here only for connections from its trusted proxies
    # (loopback by default), so a client elsewhere cannot choose its own address.
    return request.client.host if request.client else None


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes `limit` bytes (nothing more is read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# No body homeport takes nests deeper than a few levels (a GitHub push payload: about 6).
# Deeper ones are refused by name rather than left to the parser's recursion limit.
MAX_JSON_DEPTH = 32


class BadJSON(ValueError):
    """A request body that is not JSON homeport can read."""


def parse_json(body: bytes) -> Any:
    """The body's JSON value; BadJSON, whose message never echoes the body, otherwise."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise BadJSON(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        # JSONDecodeError and UnicodeDecodeError both quote the input; say less.
        raise BadJSON("the body is not JSON (UTF-8)") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise BadJSON(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            break
        stack.extend((child, level + 1) for child in node)
    return deepest
