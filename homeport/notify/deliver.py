"""Delivering events: to homeport's own signed JSON webhook and to Apprise URLs.

A deploy must never wait for, or fail because of, a notification. `send` only writes the
event to a spool directory in the data dir (a rename, so it is whole or absent). A
Dispatcher thread in every worker's main process, which outlives the job processes rq
starts and ends per job, claims each spooled event (another rename: one dispatcher wins)
and delivers it in a thread of its own: the JSON webhook from that thread, the Apprise URLs
from a short-lived `python -m homeport.notify.deliver` process, so that Apprise (large) is never
loaded into a long-lived process. Each target is tried a few times with backoff, all at
once, within DEADLINE seconds; then one line goes to the job's output saying how each went,
the URLs shown only as scheme and host (they hold tokens) and every secret masked.

An event whose dispatcher died mid-delivery is claimed again after STALE_SECONDS.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from homeport import masking
from homeport.notify import signing
from homeport.notify.events import Event
from homeport.records import joblog
from homeport.settings import Settings

log = logging.getLogger(__name__)

ATTEMPTS = 3
# Seconds before the second and the third try.
BACKOFF = (1.0, 3.0)
# Seconds one try may take (connect and answer).
TRY_TIMEOUT = 5.0
# Every delivery ends within this long whatever its targets do.
DEADLINE = 60
SPOOL = "notify"
# How often a dispatcher looks for new events: the most a delivery waits to start.
POLL_SECONDS = 0.05
# Apprise sender processes at once per dispatcher (each loads Apprise, ~30 MB); more wait
# their turn. The JSON webhook never waits for them.
PARALLEL = 4
STALE_SECONDS = 3 * DEADLINE


def wanted(settings: Settings, event: Event) -> bool:
    """Whether anyone is to be told about this event."""
    has_target = bool(settings.notify or settings.notify_webhook)
    return has_target and event.event in settings.notify_events


def spool_dir(settings: Settings) -> Path:
    return settings.data_dir / SPOOL


def send(settings: Settings, event: Event) -> None:
    """Spool the event for a dispatcher; never raises, never waits for delivery."""
    if not wanted(settings, event):
        return
    try:
        folder = spool_dir(settings)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{int(event.time * 1000):013d}-{secrets.token_hex(4)}"
        partial = folder / f"{name}.tmp"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(event.to_dict(), fh)
        partial.rename(folder / f"{name}.json")
    except OSError as exc:
        log.warning("could not spool the %s event of %s: %s", event.event, event.app, exc)


class Dispatcher:
    """Delivers spooled events in the background; start() it in a long-lived process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(PARALLEL)
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)

    def start(self) -> Dispatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        last_sweep = 0.0
        while not self._stop.wait(POLL_SECONDS):
            try:
                if time.monotonic() - last_sweep > STALE_SECONDS / 3:
                    last_sweep = time.monotonic()
                    self._reclaim()
                self.tick()
            except OSError as exc:  # the loop must outlive a bad moment of the disk
                log.warning("notification dispatcher: %s", exc)

    def tick(self) -> None:
        """Claim and start delivering every spooled event."""
        folder = spool_dir(self.settings)
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.json")):
            claimed = path.with_suffix(".sending")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another dispatcher took it
            threading.Thread(
                target=self._deliver, args=(claimed,), name="notify-event", daemon=True
            ).start()

    def _reclaim(self) -> None:
        for path in spool_dir(self.settings).glob("*.sending"):
            try:
                if time.time() - path.stat().st_mtime > STALE_SECONDS:
                    path.rename(path.with_suffix(".json"))
            except FileNotFoundError:
                continue

    def _deliver(self, claimed: Path) -> None:
        try:
            event = Event.from_dict(json.loads(claimed.read_text()))
            outcomes = deliver(self.settings, event, self._slots)
            report(self.settings, event, outcomes)
        except Exception:  # one bad event must not stop the others
            log.exception("delivering the notification %s failed", claimed.name)
        finally:
            claimed.unlink(missing_ok=True)


def _sender_environ(settings: Settings) -> dict[str, str]:
    """The Apprise sender's settings: the dispatcher's own, secrets in the environment only."""
    return settings.child_environ(
        data_dir=str(settings.data_dir),
        notify=" ".join(settings.notify),
        notify_events=" ".join(sorted(settings.notify_events)),
    )


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


def _basic_auth(url: str) -> tuple[str, str | None]:
    """The URL without its user info, and that user info as a Basic Authorization value.

    urllib cannot send `https://user:pass@host/...` itself: it reads `pass@host` as a port
    and fails with an error that quotes the password.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    return urlunsplit(parts._replace(netloc=host)), "Basic " + base64.b64encode(pair).decode()


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
    url, authorization = _basic_auth(url)
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        # HOMEPORT_NOTIFY_WEBHOOK is checked to be http(s) at start-up.
        with urllib.request.urlopen(request, timeout=TRY_TIMEOUT) as response:  # noqa: S310
            response.read(1024)
    except urllib.error.HTTPError as exc:
        # A 4xx other than these will not change by sending the same thing again.
        retry = exc.code >= 500 or exc.code in (408, 425, 429)
        raise DeliveryError(f"HTTP {exc.code}", retry=retry) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
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


def _apprise_all(urls: tuple[str, ...], event: Event) -> list[Outcome]:
    """Every Apprise URL at once, in this process (the sender)."""
    outcomes: list[Outcome | None] = [None] * len(urls)

    def run(i: int, url: str) -> None:
        outcomes[i] = attempt(shown(url), lambda: notify_apprise(url, event))

    threads = [threading.Thread(target=run, args=(i, u), daemon=True) for i, u in enumerate(urls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [o for o in outcomes if o is not None]


def _apprise_process(settings: Settings, event: Event) -> list[Outcome]:
    """The Apprise URLs through a sender process, which loads Apprise and then ends."""
    names = [shown(u) for u in settings.notify]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "homeport.notify.deliver"],
            input=json.dumps(event.to_dict()),
            env=_sender_environ(settings),
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
        found = [Outcome(**o) for o in json.loads(done.stdout)]
    except subprocess.TimeoutExpired:
        return [Outcome(n, False, 0, f"no answer within {DEADLINE} s") for n in names]
    except (OSError, ValueError, TypeError) as exc:
        return [Outcome(n, False, 0, f"the sender failed ({type(exc).__name__})") for n in names]
    return found


def deliver(
    settings: Settings, event: Event, slots: threading.Semaphore | None = None
) -> list[Outcome]:
    """Deliver to every target at once; a dead one delays none of the others."""
    outcomes: list[Outcome] = []
    webhook: threading.Thread | None = None
    if settings.notify_webhook:
        hook, secret = settings.notify_webhook, settings.webhook_secret

        def post() -> None:
            call = lambda: post_webhook(hook, secret, event)  # noqa: E731
            outcomes.insert(0, attempt(f"webhook {shown(hook)}", call))

        webhook = threading.Thread(target=post, name="notify-webhook", daemon=True)
        webhook.start()
    if settings.notify:
        if slots is None:
            outcomes.extend(_apprise_process(settings, event))
        else:
            with slots:
                outcomes.extend(_apprise_process(settings, event))
    if webhook is not None:
        # A server that answers a byte at a time would hold the thread past any timeout.
        webhook.join(timeout=DEADLINE)
        if webhook.is_alive():
            name = f"webhook {shown(settings.notify_webhook or '')}"
            return [Outcome(name, False, 0, f"no answer within {DEADLINE} s"), *outcomes]
    return outcomes


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


def report(settings: Settings, event: Event, outcomes: list[Outcome]) -> None:
    """Write the outcome line to the job's output, masked; log it when there is no job."""
    line = summary(event, outcomes)
    masker = masking.masker(settings)
    if not event.job:
        log.info("%s", masker(line))
        return
    path = joblog.log_path(settings.data_dir, event.app, event.job)
    joblog.JobLog(path, masker, settings.max_log_bytes).write(line)


def main() -> int:
    """The Apprise sender: the event on stdin, the outcomes as JSON on stdout."""
    settings = Settings.from_env()
    event = Event.from_dict(json.loads(sys.stdin.read()))
    outcomes = _apprise_all(settings.notify, event)
    print(json.dumps([asdict(o) for o in outcomes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
