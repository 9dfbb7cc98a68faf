"""Clones of a shallow app repository: only shallow ones can be served.

A webhook fetches just the pushed commit (git/fetch.py), so an app's repository can hold a
history cut short. dulwich's upload-pack would walk past the cut and break the transfer
half-way (the client sees `curl 18`); a request that asks for no depth is answered with
git's own error packet instead, which the client prints as `remote error: ...`.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

# An upload-pack request lists wants and haves: a few KB, far less than this.
MAX_REQUEST = 16 * 1024**2
ADVICE = (
    "this app's repository is shallow (webhooks fetch only the pushed commit): clone or "
    "fetch it with --depth=1, or clone the full history from the repository's own host"
)


def is_upload_pack_request(environ: dict[str, Any]) -> bool:
    return environ.get("REQUEST_METHOD") == "POST" and str(environ.get("PATH_INFO", "")).endswith(
        "/git-upload-pack"
    )


def refuse_deep_request(
    repo: Path, environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes] | None:
    """Git's error answer when `repo` is shallow and the request asks for no depth, else None.

    The request body is read here and put back for dulwich.
    """
    if not (repo / "shallow").is_file():
        return None
    raw = environ["wsgi.input"].read(MAX_REQUEST + 1)
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    if len(raw) > MAX_REQUEST:
        return _error(start_response, "the fetch request is too large; clone with --depth=1")
    body = raw
    if environ.get("HTTP_CONTENT_ENCODING", "").lower() in ("gzip", "x-gzip"):
        try:
            # Inflated within the same cap: a small gzip body can claim gigabytes.
            body = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, MAX_REQUEST)
        except zlib.error:
            # Not ours to judge: dulwich answers a malformed body.
            return None
    if b"deepen" in body:
        return None
    return _error(start_response, ADVICE)


def _error(start_response: Callable[..., Any], text: str) -> list[bytes]:
    message = f"ERR {text}\n".encode()
    packet = f"{len(message) + 4:04x}".encode() + message
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/x-git-upload-pack-result"),
            ("Content-Length", str(len(packet))),
            ("Cache-Control", "no-cache"),
        ],
    )
    return [packet]
