"""Time from `release.live` recorded to homeport's JSON event received by a local endpoint.

Each sample records a release live through the lifecycle's own rollout ending (the step a
job runs when a rollout reports Live: mark it live, then spool the event) while a
dispatcher runs as in a worker, and times until a webhook on 127.0.0.1 has the signed
event. An Apprise ntfy target is set too, so every event also starts an Apprise sender
process, as it would in use. Baseline in the same run: the same signed POST made directly.
Target: p95 <= 1 s.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid

from common import scratch

from homeport import apps, lifecycle, notify
from homeport.deployer.deploy import Live
from homeport.notify import deliver, events
from homeport.records import db, releases
from homeport.settings import Settings
from tests.support.servers import WEBHOOK_SECRET
from tests.support.targets import Ntfy, Recorder, verify

SAMPLES = 30


def _quiet(line: str) -> None:
    pass


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES
    work = scratch("notify")
    sink, ntfy = Recorder(), Ntfy()
    settings = Settings(
        data_dir=work,
        notify_webhook=f"{sink.url}/events",
        notify=(f"ntfy://127.0.0.1:{ntfy.port}/bench",),
        webhook_secret=WEBHOOK_SECRET,
    )
    db.init(work)
    app = f"bench-{uuid.uuid4().hex[:6]}"
    apps.create_repo(work, app, "main")
    latencies: list[float] = []
    dispatcher = notify.Dispatcher(settings).start()
    first = time.time()
    try:
        for i in range(samples):
            release = releases.create(
                work, app=app, commit=f"{i:040x}", image="127.0.0.1:5000/x@sha256:00", config={}
            )
            before = len(sink.received)
            lifecycle._conclude(settings, release, Live(), _quiet)
            recorded = releases.get(work, app, release.version).updated_at
            deadline = time.monotonic() + 10
            while len(sink.received) == before and time.monotonic() < deadline:
                time.sleep(0.002)
            got = sink.received[-1]
            assert verify(got) and got.json()["version"] == release.version
            latencies.append(got.at - recorded)
        baseline: list[float] = []
        for i in range(samples):
            event = events.Event(
                event="release.live", app=app, version=i, commit="0" * 40, cause="push"
            )
            started = time.time()
            deliver.post_webhook(settings.notify_webhook or "", WEBHOOK_SECRET, event)
            baseline.append(sink.received[-1].at - started)
        print(f"samples:                         {samples}")
        print(
            "recorded -> received (dispatcher):"
            f" median {statistics.median(latencies) * 1000:6.0f} ms,"
            f" p95 {_p95(latencies) * 1000:6.0f} ms, max {max(latencies) * 1000:6.0f} ms"
            " (target p95 <= 1000 ms)"
        )
        print(
            f"in-process POST (baseline):      median {statistics.median(baseline) * 1000:6.0f} ms,"
            f" p95 {_p95(baseline) * 1000:6.0f} ms"
        )
        # The Apprise deliveries run on, 4 sender processes at a time: report when they end.
        deadline = time.monotonic() + 180
        while len(ntfy.received) < samples and time.monotonic() < deadline:
            time.sleep(0.1)
        spent = time.time() - first
        print(
            f"ntfy (Apprise) messages:         {len(ntfy.received)} of {samples},"
            f" {spent:.1f} s after the first event"
        )
    finally:
        dispatcher.stop()
        sink.close()
        ntfy.close()


if __name__ == "__main__":
    main()
