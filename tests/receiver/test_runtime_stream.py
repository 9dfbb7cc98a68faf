"""A streamed runtime answer is read off the event loop and stops when its client leaves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from homeport.receiver.runtime_api import _stream
from homeport.receiver.stopping import Stopping
from tests.support.servers import free_port, wait_healthy
from tests.support.waiting import wait_until


@contextmanager
def _serving(
    produce: Callable[[threading.Event], Iterator[bytes]], stopping: Stopping | None = None
) -> Iterator[str]:
    """Serve produce's stream at /stream (and /healthz) on 127.0.0.1; yield the base URL."""

    async def stream(request: Request) -> Response:
        return _stream(stopping or Stopping(), produce)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/stream", stream), Route("/healthz", healthz)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(url, 10)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_stream_ends_its_producer_when_the_client_leaves() -> None:
    """While a stream's producer blocks, other requests are served; closing the client stops
    the producer (as a followed pod log is closed) within a moment."""
    stopped = threading.Event()
    release = threading.Event()

    def produce(stop: threading.Event) -> Iterator[bytes]:
        yield b"first\n"
        # Blocks like a quiet followed log: only `stop` ends it (bounded for safety).
        for _ in range(600):
            if stop.wait(0.1):
                break
            if release.is_set():
                yield b"more\n"
        stopped.set()

    with _serving(produce) as url:
        with httpx.Client(timeout=10) as client:
            with client.stream("GET", url + "/stream") as answer:
                lines = answer.iter_lines()
                assert next(lines) == "first"
                started = time.monotonic()
                assert client.get(url + "/healthz").status_code == 200
                assert time.monotonic() - started < 2  # the loop is not blocked
                release.set()
                assert next(lines) == "more"
        wait_until(stopped.is_set, timeout=10, what="the producer to stop", interval=0.05)


def test_streams_past_the_limit_are_refused_until_one_closes() -> None:
    """MAX_STREAMS open streams at once; one more is 429 saying so, and closing one frees it."""
    from contextlib import ExitStack

    from homeport.receiver import runtime_api

    def produce(stop: threading.Event) -> Iterator[bytes]:
        yield b"open\n"
        stop.wait(60)  # bounded: a quiet follow, ended by its client

    with _serving(produce) as base:
        url = base + "/stream"
        limits = httpx.Limits(max_connections=runtime_api.MAX_STREAMS + 5)
        with httpx.Client(timeout=10, limits=limits) as client, ExitStack() as streams:
            opened = []
            for _ in range(runtime_api.MAX_STREAMS):
                answer = streams.enter_context(client.stream("GET", url))
                lines = answer.iter_lines()  # kept: a dropped iterator closes the connection
                assert next(lines) == "open"
                opened.append((answer, lines))
            refused = client.get(url)
            assert refused.status_code == 429
            assert "log streams are open already" in refused.json()["error"]
            opened[0][0].close()

            def admitted() -> bool:
                with client.stream("GET", url) as answer:
                    return answer.status_code == 200

            wait_until(admitted, timeout=10, what="a freed stream", interval=0.1)


def test_a_stream_ends_with_a_line_saying_so_when_the_receiver_stops() -> None:
    """A followed log ends soon after the receiver starts stopping: its producer is stopped
    and the client's last line says why, so the stop is not held up by a quiet stream."""
    stopping = Stopping()
    stopped = threading.Event()

    def produce(stop: threading.Event) -> Iterator[bytes]:
        yield b"first\n"
        for _ in range(600):  # only `stop` ends it (bounded for safety)
            if stop.wait(0.1):
                break
        stopped.set()

    with _serving(produce, stopping) as url:
        with httpx.stream("GET", url + "/stream", timeout=30) as answer:
            lines = answer.iter_lines()
            assert next(lines) == "first"
            began = time.monotonic()
            stopping.set()
            rest = list(lines)
        assert time.monotonic() - began < 5
        assert rest == ["homeport: homeport is stopping; follow again once it is back"]
        assert stopped.wait(5)
