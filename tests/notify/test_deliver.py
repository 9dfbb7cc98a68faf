"""Notifications: real sender processes deliver to real local endpoints, in the background."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from homeport import lifecycle, masking, notify
from homeport.errors import ConfigError
from homeport.notify import deliver, events
from homeport.records import db, joblog, jobs
from homeport.settings import Settings
from tests.support.servers import WEBHOOK_SECRET
from tests.support.targets import Blackhole, Ntfy, Recorder, verify
from tests.support.waiting import wait_until


@pytest.fixture
def sink() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


@pytest.fixture
def dispatch() -> Iterator[Callable[[Settings], notify.Dispatcher]]:
    """dispatch(settings): a dispatcher as a worker runs one, stopped after the test."""
    started: list[notify.Dispatcher] = []

    def start(settings: Settings) -> notify.Dispatcher:
        started.append(notify.Dispatcher(settings).start())
        return started[-1]

    yield start
    for dispatcher in started:
        dispatcher.stop()


def _failed_job(settings: Settings, conn: redis.Redis, app: str) -> jobs.Job:
    submitted = lifecycle.submit_deploy(
        settings,
        conn,
        app=app,
        ref="refs/heads/main",
        commit="c" * 40,
        old_sha="0" * 40,
        source="github",
    )
    assert isinstance(submitted, lifecycle.Submitted)
    job = lifecycle.claim(settings, conn, app)
    assert job is not None
    return job


def _log(settings: Settings, job: jobs.Job) -> str:
    path = joblog.log_path(settings.data_dir, job.app, job.id)
    return path.read_text() if path.exists() else ""


def test_a_failed_job_sends_a_signed_json_event(
    tmp_path: Path, redis_url: str, sink: Recorder, dispatch: Callable[[Settings], object]
) -> None:
    """job.failed reaches the webhook signed like a signed rollback; the log names it masked."""
    db.init(tmp_path)
    hook = f"{sink.url}/events/secret-path-token-42?x=1"
    settings = Settings(
        data_dir=tmp_path, redis_url=redis_url, notify_webhook=hook, webhook_secret=WEBHOOK_SECRET
    )
    conn = redis.Redis.from_url(redis_url)
    dispatch(settings)
    job = _failed_job(settings, conn, "notify-a")
    lifecycle.fail(settings, job, "the build failed: no Dockerfile at the repository root")
    got = wait_until(lambda: sink.received, timeout=15, what="the event")[0]
    assert verify(got)
    assert got.path == "/events/secret-path-token-42?x=1"
    data = got.json()
    assert data["event"] == "job.failed" and got.headers["x-homeport-event"] == "job.failed"
    assert (data["app"], data["commit"], data["cause"], data["job"]) == (
        "notify-a",
        "c" * 40,
        "github",
        job.id,
    )
    assert data["reason"].startswith("the build failed")
    assert data["version"] is None and abs(data["time"] - time.time()) < 60
    line = wait_until(
        lambda: [x for x in _log(settings, job).splitlines() if "notified" in x],
        timeout=15,
        what="the outcome line",
    )
    assert line == [f"-----> notified job.failed: webhook http://127.0.0.1:{sink.port}/… ok"]
    assert "secret-path-token" not in _log(settings, job)
    wait_until(
        lambda: not list((tmp_path / deliver.SPOOL).iterdir()), timeout=10, what="an empty spool"
    )


def test_ntfy_gets_the_apprise_notification(
    tmp_path: Path, redis_url: str, dispatch: Callable[[Settings], object]
) -> None:
    """An Apprise ntfy:// URL publishes the event to a server speaking ntfy's API."""
    ntfy = Ntfy()
    try:
        db.init(tmp_path)
        settings = Settings(
            data_dir=tmp_path,
            redis_url=redis_url,
            notify=(f"ntfy://127.0.0.1:{ntfy.port}/homeport-alerts",),
        )
        conn = redis.Redis.from_url(redis_url)
        dispatch(settings)
        job = _failed_job(settings, conn, "notify-b")
        lifecycle.fail(settings, job, "fetching failed: the repository is gone")
        message = wait_until(ntfy.messages, timeout=30, what="the ntfy message")[0]
        assert message["topic"] == "homeport-alerts"
        assert "notify-b" in message["title"]
        assert "fetching failed: the repository is gone" in message["message"]
        wait_until(
            lambda: "-----> notified job.failed: ntfy://… ok" in _log(settings, job),
            timeout=15,
            what="the outcome line",
        )
    finally:
        ntfy.close()


def test_a_dead_target_delays_nothing(
    tmp_path: Path, redis_url: str, sink: Recorder, dispatch: Callable[[Settings], object]
) -> None:
    """A target that never answers neither delays the job nor the other target; it is retried
    a bounded number of times and reported failed."""
    hole = Blackhole()
    try:
        db.init(tmp_path)
        settings = Settings(
            data_dir=tmp_path,
            redis_url=redis_url,
            notify=(f"ntfy://127.0.0.1:{hole.port}/t",),
            notify_webhook=sink.url + "/e",
            webhook_secret=WEBHOOK_SECRET,
        )
        conn = redis.Redis.from_url(redis_url)
        dispatch(settings)
        job = _failed_job(settings, conn, "notify-c")
        started = time.monotonic()
        lifecycle.fail(settings, job, "the build failed")
        assert time.monotonic() - started < 0.5
        assert jobs.get(tmp_path, job.id).status == jobs.FAILED
        wait_until(lambda: sink.received, timeout=10, what="the live target's event")
        assert wait_until(lambda: hole.held, timeout=10, what="a connection to the dead one")
        line = wait_until(
            lambda: [x for x in _log(settings, job).splitlines() if "notified" in x],
            timeout=deliver.DEADLINE,
            what="the outcome line",
            interval=1,
        )[0]
        assert f"webhook http://127.0.0.1:{sink.port}/… ok" in line
        assert f"ntfy://… failed after {deliver.ATTEMPTS} tries" in line
        assert len(sink.received) == 1
    finally:
        hole.close()


def test_only_chosen_events_are_sent(tmp_path: Path) -> None:
    """HOMEPORT_NOTIFY_EVENTS filters; no target means nothing is sent at all."""
    settings = Settings.from_env(
        {
            "HOMEPORT_DATA_DIR": str(tmp_path),
            "HOMEPORT_NOTIFY_WEBHOOK": "http://127.0.0.1:9/e",
            "HOMEPORT_NOTIFY_EVENTS": "release.failed, job.failed",
        }
    )
    live = events.Event(event="release.live", app="a", version=1, commit="c" * 40, cause="push")
    failed = events.Event(event="job.failed", app="a", version=None, commit="c" * 40, cause="push")
    assert not notify.wanted(settings, live) and notify.wanted(settings, failed)
    assert not notify.wanted(Settings(data_dir=tmp_path), failed)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HOMEPORT_NOTIFY", "ntfy-without-scheme", "URL 1 is not an Apprise URL"),
        ("HOMEPORT_NOTIFY_WEBHOOK", "ftp://x/y", "is not an http:// or https:// URL"),
        ("HOMEPORT_NOTIFY_EVENTS", "release.live deploy.done", "'deploy.done' is not an event"),
    ],
)
def test_bad_notification_settings_are_refused(name: str, value: str, message: str) -> None:
    """A bad notification setting stops start-up naming the variable, never its value."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(f"{name}: ")
    assert message in str(caught.value)


def test_notification_urls_are_masked_in_output() -> None:
    """The URLs hold tokens: they are secrets to every job's output."""
    settings = Settings(notify=("tgram://123:bot-token/456",), notify_webhook="https://h/k/tok")
    masker = masking.masker(settings)
    assert masker("sent to tgram://123:bot-token/456 and https://h/k/tok") == "sent to *** and ***"
    assert deliver.shown("tgram://123:bot-token/456") == "tgram://…"
    assert deliver.shown("https://user:pw@h:8443/k/tok") == "https://h:8443/…"


def test_a_webhook_url_with_a_password_sends_it_as_basic_auth_and_never_shows_it(
    tmp_path: Path, redis_url: str, sink: Recorder, dispatch: Callable[[Settings], object]
) -> None:
    """https://user:pass@host/... is delivered with Basic auth (urllib cannot send it in the
    URL); the password is in no outcome line and masked wherever output shows it."""
    db.init(tmp_path)
    password = "S3cr3t%2FPassw0rd"  # percent-encoded in the URL: sent as S3cr3t/Passw0rd
    hook = f"http://hook:{password}@127.0.0.1:{sink.port}/events"
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, notify_webhook=hook)
    dispatch(settings)
    job = _failed_job(settings, redis.Redis.from_url(redis_url), "notify-auth")
    lifecycle.fail(settings, job, "the build failed")
    got = wait_until(lambda: sink.received, timeout=15, what="the event")[0]
    assert got.path == "/events"
    sent = base64.b64encode(b"hook:S3cr3t/Passw0rd").decode()
    assert got.headers["authorization"] == f"Basic {sent}"
    line = wait_until(
        lambda: [x for x in _log(settings, job).splitlines() if "notified" in x],
        timeout=15,
        what="the outcome line",
    )
    assert line == [f"-----> notified job.failed: webhook http://127.0.0.1:{sink.port}/… ok"]
    masker = masking.masker(settings)
    assert masker("S3cr3t/Passw0rd and S3cr3t%2FPassw0rd") == "*** and ***"
