"""Runtime logs (`homeport logs`): the output of an app's pods, merged into one stream.

Each line is the kubelet's timestamp, the process and the pod, then the line itself, as
Heroku, Dokku and Kamal show theirs:

    2026-11-27T23:50:01.123456Z web[blog-6f8d9c7b5-x2x4q]: GET /index.html

Without following, every pod's recent lines are read and merged in time order. Following
streams each pod's log on a thread of its own and looks for new pods every DISCOVER_EVERY
seconds, so pods of a new release (or a restarted container) join as they start.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from homeport.deployer.errors import ApiError
from homeport.deployer.kube import Kube
from homeport.deployer.workloads import pick, processes
from homeport.errors import HomeportError, InvalidInput
from homeport.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TAIL = 100
MAX_TAIL = 10_000
# --since as far back as a kubelet keeps logs anyway.
MAX_SINCE = 30 * 24 * 3600
# Bytes read from one pod's log without following: a bound on what one request pulls in.
MAX_POD_BYTES = 8 * 1024**2
DISCOVER_EVERY = 1.0
# Lines held between the pods' threads and a slow reader; past it the threads wait.
QUEUE_LINES = 2000
_SINCE = re.compile(r"(\d{1,7})([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> int:
    """`90`, `30s`, `10m`, `2h`, `1d` as seconds; InvalidInput otherwise."""
    match = _SINCE.fullmatch(text.strip())
    if not match:
        raise InvalidInput(f"since must be a duration like 30s, 10m, 2h or 1d, not {text!r}")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_SINCE:
        raise InvalidInput(f"since must be between 1 s and {MAX_SINCE // 86400} days")
    return seconds


def parse_tail(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= MAX_TAIL:
        raise InvalidInput(f"tail must be a number of lines from 0 to {MAX_TAIL}, not {text!r}")
    return int(text)


def sort_key(stamp: str) -> str:
    """RFC 3339 timestamps with their fraction padded to 9 digits, so they sort as text."""
    base, dot, fraction = stamp.rstrip("Z").partition(".")
    return f"{base}.{fraction.ljust(9, '0')[:9]}Z" if dot or base else ""


def format_line(process: str, pod: str, raw: bytes) -> tuple[str, bytes]:
    """(sort key, the line as shown) of one line of a log read with timestamps=true."""
    stamp, _, text = raw.rstrip(b"\n").partition(b" ")
    key = sort_key(stamp.decode("ascii", "replace"))
    shown = key[:26] + "Z" if key else "-"
    return key, f"{shown} {process}[{pod}]: ".encode() + text + b"\n"


def _container(pod: Mapping[str, Any]) -> str:
    for container in pod.get("spec", {}).get("containers") or []:
        return str(container.get("name") or "app")
    return "app"


def _started(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's container has a log to read (it runs, or ran)."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
        if status.get("lastState", {}).get("terminated"):
            return True
    return False


def _running(pod: Mapping[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return any("running" in (s.get("state") or {}) for s in statuses)


def _log_path(kube: Kube, pod: Mapping[str, Any]) -> str:
    return kube.path("pods", pod["metadata"]["name"]) + "/log"


def check_process(settings: Settings, app: str, process: str | None) -> None:
    """NotFound when `process` is named but the app has no such process (before streaming)."""
    with Kube(settings) as kube:
        pick(app, processes(kube, app), process)


def recent(
    settings: Settings, app: str, *, process: str | None, since: int | None, tail: int | None
) -> list[bytes]:
    """The pods' recent lines merged in time order; the last `tail` of them."""
    if since is None and tail is None:
        tail = DEFAULT_TAIL
    stop = threading.Event()
    lines: list[tuple[str, bytes]] = []
    with Kube(settings) as kube:
        for proc in pick(app, processes(kube, app), process):
            for pod in proc.pods:
                if not _started(pod):
                    continue
                query: dict[str, str | int] = {
                    "container": _container(pod),
                    "timestamps": "true",
                    "limitBytes": MAX_POD_BYTES,
                }
                if since is not None:
                    query["sinceSeconds"] = since
                if tail is not None:
                    query["tailLines"] = tail
                name = pod["metadata"]["name"]
                try:
                    for raw in kube.stream(_log_path(kube, pod), stop, query=query):
                        lines.append(format_line(proc.name, name, raw))
                except ApiError as exc:
                    if exc.status not in (400, 404):  # not started yet, or gone meanwhile
                        raise
    lines.sort(key=lambda pair: pair[0])
    if tail is not None:
        lines = lines[len(lines) - tail :] if tail else []
    return [line for _, line in lines]


@dataclass
class _Tail:
    """One pod's followed log."""

    process: str
    pod: str
    last: str = ""
    thread: threading.Thread | None = None
    # When the stream was last opened: where a resume starts if no line came since.
    opened: str = field(default="")


def _pump(
    kube: Kube,
    tail: _Tail,
    path: str,
    query: dict[str, str | int],
    stop: threading.Event,
    out: queue.Queue[bytes | HomeportError],
) -> None:
    try:
        for raw in kube.stream(path, stop, query=query):
            key, line = format_line(tail.process, tail.pod, raw)
            if tail.last and key and key <= tail.last:
                continue  # read again after a resume from the last timestamp
            tail.last = key or tail.last
            while not stop.is_set():
                try:
                    out.put(line, timeout=0.5)
                    break
                except queue.Full:
                    continue
    except HomeportError as exc:
        # Not started yet, gone, or a broken stream: the next look at the pods decides.
        log.info("log of pod %s ended: %s", tail.pod, exc)


def _look(
    kube: Kube,
    app: str,
    process: str | None,
    tails: dict[str, _Tail],
    first: bool,
    recent: tuple[int | None, int | None],
    stop: threading.Event,
    out: queue.Queue[bytes | HomeportError],
) -> None:
    """Start following every started pod not followed yet, or whose stream ended early."""
    since, tail = recent
    for proc in pick(app, processes(kube, app), process):
        for pod in proc.pods:
            name = pod["metadata"]["name"]
            known = tails.get(name)
            if not _started(pod):
                continue
            if known is not None and (
                (known.thread is not None and known.thread.is_alive()) or not _running(pod)
            ):
                continue
            query: dict[str, str | int] = {
                "container": _container(pod),
                "timestamps": "true",
                "follow": "true",
            }
            if known is None:
                known = tails[name] = _Tail(proc.name, name)
                if first:
                    # What was there before following began: only the recent part.
                    if since is not None:
                        query["sinceSeconds"] = since
                    if tail is not None:
                        query["tailLines"] = tail
            else:
                # Resumed (a broken stream, a restarted container): from the last line.
                query["sinceTime"] = known.last or known.opened
            known.opened = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            known.thread = threading.Thread(
                target=_pump,
                args=(kube, known, _log_path(kube, pod), query, stop, out),
                name=f"log-{name}",
                daemon=True,
            )
            known.thread.start()


def follow(
    settings: Settings,
    app: str,
    *,
    process: str | None,
    since: int | None,
    tail: int | None,
    stop: threading.Event,
) -> Iterator[bytes]:
    """The pods' lines as they are written, until `stop` is set; new pods join as they start.

    Looking for new pods happens on a thread of its own, so that no line waits for a look.
    """
    if since is None and tail is None:
        tail = DEFAULT_TAIL
    out: queue.Queue[bytes | HomeportError] = queue.Queue(QUEUE_LINES)
    tails: dict[str, _Tail] = {}

    def looking(kube: Kube) -> None:
        first = True
        try:
            while not stop.is_set():
                _look(kube, app, process, tails, first, (since, tail), stop, out)
                first = False
                stop.wait(DISCOVER_EVERY)
        except HomeportError as exc:
            out.put(exc)

    with Kube(settings) as kube:
        looker = threading.Thread(target=looking, args=(kube,), name="log-look", daemon=True)
        looker.start()
        while not stop.is_set():
            try:
                item = out.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(item, HomeportError):
                raise item
            yield item
