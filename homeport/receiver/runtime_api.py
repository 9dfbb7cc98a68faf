"""Runtime routes: one-off commands (runs), the app's pod logs, and ps.

The Kubernetes client blocks, so every call runs on a thread; a stream (a run's output, the
app's logs) is read on a thread of its own and handed to the event loop line by line. When the
client goes away the stream's thread is told to stop, and its Kubernetes request is closed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from homeport.errors import HomeportError
from homeport.lifecycle import runtime
from homeport.receiver.api import existing_app, state_of
from homeport.receiver.state import BadJSON, parse_json, read_capped
from homeport.receiver.stopping import Stopping

log = logging.getLogger(__name__)

# A run request is a command line: 64 KiB of argv plus JSON quoting fits in this.
MAX_RUN_BODY = 256 * 1024
# Each open stream holds a thread (and one per followed pod) and Kubernetes API connections:
# a client that opens follow after follow must not use up the receiver's threads.
MAX_STREAMS = 32
_open_streams = threading.BoundedSemaphore(MAX_STREAMS)
_YES = ("1", "true", "yes")
_DONE = object()


class _Streamed(StreamingResponse):
    """A streaming response that always runs `done` once sent, or once its client is gone."""

    def __init__(self, body: AsyncIterator[bytes], done: Callable[[], None]) -> None:
        super().__init__(body, media_type="text/plain; charset=utf-8")
        self._done = done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._done()


def _too_many() -> Response:
    return JSONResponse(
        {"error": f"{MAX_STREAMS} log streams are open already; close one and try again"},
        status_code=429,
        headers={"Retry-After": "5"},
    )


def _stream(stopping: Stopping, produce: Callable[[threading.Event], Iterator[bytes]]) -> Response:
    """Stream what `produce` yields on a thread of its own; stop it when the client leaves
    or the receiver stops (the client is told so in a last line)."""
    if not _open_streams.acquire(blocking=False):
        return _too_many()
    loop = asyncio.get_running_loop()
    # Bounded, so a slow client holds back the producer rather than filling memory.
    inbox: asyncio.Queue[object] = asyncio.Queue(maxsize=256)
    gone = threading.Event()  # the client left: nothing more is handed over
    stop = threading.Event()  # the producer stops: the client left or the receiver stops

    def hand(item: object) -> None:
        future = asyncio.run_coroutine_threadsafe(inbox.put(item), loop)
        while not gone.is_set():
            try:
                future.result(timeout=0.5)
                return
            except TimeoutError:
                continue
        future.cancel()

    def run() -> None:
        try:
            with stopping.watch(stop):
                for chunk in produce(stop):
                    if stop.is_set():
                        break
                    hand(chunk)
            if stopping.is_set():
                hand(b"homeport: homeport is stopping; follow again once it is back\n")
        except HomeportError as exc:
            # The status line went out already: the error can only be the last line.
            hand(f"homeport: {exc}\n".encode())
        except Exception:
            log.exception("stream failed")
            hand(b"homeport: internal error; see the homeport log\n")
        finally:
            hand(_DONE)

    async def body() -> AsyncIterator[bytes]:
        thread = threading.Thread(target=run, name="stream", daemon=True)
        thread.start()
        try:
            while True:
                item = await inbox.get()
                if item is _DONE:
                    return
                assert isinstance(item, bytes)
                yield item
        finally:
            gone.set()
            stop.set()

    def done() -> None:
        gone.set()
        stop.set()
        _open_streams.release()

    return _Streamed(body(), done)


def _process(request: Request) -> str | None:
    name = request.query_params.get("process")
    return name or None


# -- runs ----------------------------------------------------------------------------------


async def create_run(request: Request) -> Response:
    """POST {"command": [...], "process": "web"}: 202 with the run's id and status."""
    app = existing_app(request)
    body = await read_capped(request, MAX_RUN_BODY)
    if body is None:
        return JSONResponse({"error": f"body over {MAX_RUN_BODY // 1024} KiB"}, status_code=413)
    how = 'send {"command": ["CMD", "ARG", ...]}'
    try:
        data: Any = parse_json(body)
    except BadJSON as exc:
        return JSONResponse({"error": f"{exc}; {how}"}, status_code=400)
    if not isinstance(data, dict):
        return JSONResponse({"error": f"the body must be a JSON object; {how}"}, status_code=400)
    process = data.get("process", "web")
    if not isinstance(process, str) or not process:
        return JSONResponse({"error": "process must be a process name"}, status_code=400)
    settings = state_of(request).settings
    started = await asyncio.to_thread(
        lambda: runtime.start_run(settings, app=app, command=data.get("command"), process=process)
    )
    started["log"] = f"/api/apps/{app}/runs/{started['id']}/log"
    return JSONResponse(started, status_code=202)


async def get_run(request: Request) -> Response:
    """The run's status and exit code; a run that has ended is removed once this is read.

    DELETE stops a run and removes it.
    """
    app = existing_app(request)
    settings = state_of(request).settings
    run_id = request.path_params["run"]
    if request.method == "DELETE":
        found = await asyncio.to_thread(runtime.stop_run, settings, app, run_id)
    else:
        found = await asyncio.to_thread(runtime.run_status, settings, app, run_id)
    return JSONResponse(found.to_dict())


async def run_log(request: Request) -> Response:
    """The run's output; ?follow=1 waits for it to start and streams until its pod ends."""
    app = existing_app(request)
    settings = state_of(request).settings
    run_id = request.path_params["run"]
    follow = request.query_params.get("follow") in _YES
    await asyncio.to_thread(runtime.check_run, settings, app, run_id)
    return _stream(
        state_of(request).stopping,
        lambda stop: runtime.run_output(settings, app, run_id, follow, stop),
    )


# -- logs and ps ---------------------------------------------------------------------------


async def app_logs(request: Request) -> Response:
    """The app's pods' output merged, each line naming its process and pod.

    ?follow=1 streams new lines (and new pods) until the client leaves; ?process=NAME keeps
    one process; ?since=10m and ?tail=N bound what was written before.
    """
    app = existing_app(request)
    settings = state_of(request).settings
    params = request.query_params
    follow = params.get("follow") in _YES
    process = _process(request)
    since = runtime.parse_since(params["since"]) if params.get("since") else None
    tail = runtime.parse_tail(params["tail"]) if params.get("tail") else None
    if not follow:
        lines = await asyncio.to_thread(
            lambda: runtime.recent_logs(settings, app, process=process, since=since, tail=tail)
        )
        return Response(b"".join(lines), media_type="text/plain; charset=utf-8")
    # Errors a client can act on (no such process, cluster down) come as a status, not a line.
    await asyncio.to_thread(runtime.check_process, settings, app, process)
    return _stream(
        state_of(request).stopping,
        lambda stop: runtime.follow_logs(
            settings, app, process=process, since=since, tail=tail, stop=stop
        ),
    )


async def app_ps(request: Request) -> Response:
    """Each process of the app with its pods: status, restarts, release, age."""
    app = existing_app(request)
    settings = state_of(request).settings
    return JSONResponse(await asyncio.to_thread(runtime.processes, settings, app))
