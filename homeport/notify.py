"""Delivering events: to Apprise URLs and to homeport's own signed JSON webhook.

A deploy must never wait for, or fail because of, a notification. `send` writes the event
to a spool file in the data dir and starts a detached sender process (`python -m
homeport.notify FILE`) that outlives the job process: rq ends a job's process as soon as
the job returns, which would cut a thread's delivery short. The sender tries each target a
few times with backoff, all targets at once, within DEADLINE seconds, then writes one line
to the job's output saying how each went, with the URLs shown only as scheme and host (they
hold tokens) and every secret masked.

Apprise is imported only in the sender, and only when an Apprise URL is set: it is large,
and the receiver and workers never need it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from homeport import joblog, signing
from homeport.config import Settings
from homeport.events import Event

log = logging.getLogger(__name__)

ATTEMPTS = 3
# Seconds before the second and the third try.
BACKOFF = (1.0, 3.0)
# Seconds one try may take (connect and answer).
TRY_TIMEOUT = 5.0
# The sender process ends after this long whatever its targets do: it is bounded.
DEADLINE = 60
SPOOL = "notify"


def wanted(settings: Settings, event: Event) -> bool:
    """Whether anyone is to be told about this event."""
    has_target = bool(settings.notify or settings.notify_webhook)
    return has_target and event.event in settings.notify_events


def _spool(settings: Settings, event: Event) -> Path:
    folder = settings.data_dir / SPOOL
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{int(event.time * 1000):013d}-{secrets.token_hex(4)}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(event.to_dict(), fh)
    return path


def _sender_environ(settings: Settings) -> dict[str, str]:
    """The sender's settings: those of the caller, secrets in the environment only."""
    env = settings.child_environ(
        data_dir=str(settings.data_dir),
        notify=" ".join(settings.notify),
        notify_webhook=settings.notify_webhook or "",
        webhook_secret=settings.webhook_secret or "",
        max_log_bytes=str(settings.max_log_bytes),
    )
    return env


def send(settings: Settings, event: Event) -> None:
    """Hand the event to a detached sender; never raises, never waits for delivery."""
    if not wanted(settings, event):
        return
    try:
        path = _spool(settings, event)
        # Through a shell that exits at once: the sender is not our child, so nothing is
        # left to reap when the job process moves on or ends.
        subprocess.run(
            [
                "sh",
                "-c",
                '"$@" </dev/null >/dev/null 2>&1 &',
                "sh",
                sys.executable,
                "-m",
                "homeport.notify",
                str(path),
            ],
            env=_sender_environ(settings),
            stdin=subprocess.DEVNULL,
            check=True,
            timeout=10,
            start_new_session=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not start the notification sender for %s: %s", event.event, exc)


# -- the sender process ----------------------------------------------------------------------


class DeliveryError(Exception):
    """One try to one target did not get through; the message is safe to show."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def shown(url: str) -> str:
    """A target as the job output names it: scheme and host only, never path or credentials."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}/…"
    # Apprise URLs keep tokens anywhere, the host included.
    return f"{parts.scheme}://…"


def post_webhook(url: str, secret: str | None, event: Event) -> None:
    """POST the event's JSON, signed like a signed rollback when there is a secret."""
    body = json.dumps(event.to_dict()).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "homeport",
        "X-Homeport-Event": event.event,
    }
    if secret:
        stamp = str(int(time.time()))
        path = urlsplit(url).path or "/"
        headers[signing.TIMESTAMP_HEADER] = stamp
        headers[signing.SIGNATURE_HEADER] = signing.signature(secret, stamp, "POST", path, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        # HOMEPORT_NOTIFY_WEBHOOK is checked to be http(s) at start-up.
        with urllib.request.urlopen(request, timeout=TRY_TIMEOUT) as response:  # noqa: S310
            response.read(1024)
    except urllib.error.HTTPError as exc:
        # A 4xx other than these will not change by sending the same thing again.
        retry = exc.code >= 500 or exc.code in (408, 425, 429)
        raise DeliveryError(f"HTTP {exc.code}", retry=retry) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(str(reason) or type(exc).__name__) from None


def notify_apprise(url: str, event: Event) -> None:
    """Send the event through Apprise to one URL."""
    import apprise  # the sender alone pays for it

    logging.getLogger("apprise").setLevel(logging.CRITICAL)
    target = apprise.Apprise()
    if not target.add(url):
        raise DeliveryError("Apprise does not understand this URL; check it", retry=False)
    if not target.notify(title=event.title(), body=event.body()):
        raise DeliveryError("the service did not accept it or could not be reached")


@dataclass(frozen=True)
class Outcome:
    target: str
    ok: bool
    tries: int
    detail: str = ""


def attempt(
    target: str, call: Callable[[], None], sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    """Try `call` up to ATTEMPTS times with backoff; the outcome, never an exception."""
    for tries in range(1, ATTEMPTS + 1):
        try:
            call()
        except DeliveryError as exc:
            if not exc.retry or tries == ATTEMPTS:
                return Outcome(target, False, tries, str(exc))
            sleep(BACKOFF[tries - 1])
        else:
            return Outcome(target, True, tries)
    raise AssertionError("unreachable")


def deliver(settings: Settings, event: Event) -> list[Outcome]:
    """Deliver to every target at once; a dead one delays none of the others."""
    calls: list[tuple[str, Callable[[], None]]] = []
    if settings.notify_webhook:
        hook = settings.notify_webhook
        calls.append(
            (
                f"webhook {shown(hook)}",
                lambda: post_webhook(hook, settings.webhook_secret, event),
            )
        )
    for url in settings.notify:
        calls.append((shown(url), lambda url=url: notify_apprise(url, event)))  # type: ignore[misc]
    outcomes: list[Outcome | None] = [None] * len(calls)

    def run(i: int, name: str, call: Callable[[], None]) -> None:
        outcomes[i] = attempt(name, call)

    threads = [
        threading.Thread(target=run, args=(i, name, call), daemon=True)
        for i, (name, call) in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [o for o in outcomes if o is not None]


def summary(event: Event, outcomes: list[Outcome]) -> str:
    """The one line the job output gets."""
    parts = []
    for o in outcomes:
        if o.ok:
            parts.append(f"{o.target} ok")
        else:
            tries = f" after {o.tries} tries" if o.tries > 1 else ""
            parts.append(f"{o.target} failed{tries} ({o.detail})")
    return f"-----> notified {event.event}: " + "; ".join(parts)


def main(argv: list[str]) -> int:
    """The sender: deliver the spooled event named by argv[0], report, remove the file."""
    # Bounded whatever the targets do: SIGALRM's default action ends the process.
    signal.alarm(DEADLINE)
    settings = Settings.from_env()
    path = Path(argv[0])
    try:
        event = Event.from_dict(json.loads(path.read_text()))
    finally:
        path.unlink(missing_ok=True)
    outcomes = deliver(settings, event)
    line = summary(event, outcomes)
    if event.job:
        output = joblog.JobLog(
            joblog.log_path(settings.data_dir, event.app, event.job),
            joblog.Masker(settings.secrets()),
            settings.max_log_bytes,
        )
        output.write(line)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
