"""Prometheus metrics, computed from homeport's durable records at scrape time.

Nothing is counted in memory: the receiver reads the database (jobs, releases, stage
timings, automatic rollbacks) when scraped, so every process agrees and a restart loses
nothing. Only the build cache size is asked of the Docker engine (builder/cache_usage.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from homeport.builder.cache_usage import CacheUsage
from homeport.records import db, jobs

# Stage durations run from a second (a fetch) to the job timeout (a slow build).
BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
STAGES = ("fetch", "build", "rollout")
STATES = (jobs.QUEUED, jobs.RUNNING, jobs.SUCCEEDED, jobs.FAILED, jobs.SUPERSEDED)
# One per process: the engine is asked at most every cache_usage.REFRESH_SECONDS.
_cache = CacheUsage()


class HomeportCollector(Collector):
    """Reads the records each time it is collected."""

    def __init__(self, data_dir: Path, cache_bytes: Callable[[], int | None]) -> None:
        self.data_dir = data_dir
        self.cache_bytes = cache_bytes

    def collect(self) -> Iterator[Metric]:
        with db.connect(self.data_dir) as conn:
            deploys = conn.execute(
                "SELECT app, status, COUNT(*) AS n FROM jobs WHERE kind = 'deploy'"
                " AND status IN (?, ?, ?) GROUP BY app, status ORDER BY app, status",
                (jobs.SUCCEEDED, jobs.FAILED, jobs.SUPERSEDED),
            ).fetchall()
            states = dict(
                conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
            )
            rollbacks = conn.execute(
                "SELECT source, COUNT(*) AS n FROM jobs WHERE kind = 'rollback' AND status = ?"
                " GROUP BY source ORDER BY source",
                (jobs.SUCCEEDED,),
            ).fetchall()
            (automatic,) = conn.execute("SELECT COUNT(*) FROM auto_rollbacks").fetchone()
            live = conn.execute(
                "SELECT app, version, updated_at FROM releases WHERE status = 'live' ORDER BY app"
            ).fetchall()
            bucket_sums = ", ".join(f"SUM(seconds <= {b})" for b in BUCKETS)
            stages = conn.execute(
                f"SELECT stage, COUNT(*), SUM(seconds), {bucket_sums}"  # noqa: S608 - constants
                " FROM job_stages GROUP BY stage ORDER BY stage"
            ).fetchall()

        deployed = CounterMetricFamily(
            "homeport_deploys",
            "Deploy jobs that ended, by app and outcome (succeeded, failed, superseded).",
            labels=["app", "outcome"],
        )
        for row in deploys:
            deployed.add_metric([row["app"], row["status"]], row["n"])
        yield deployed

        by_state = GaugeMetricFamily(
            "homeport_jobs", "Jobs (deploys and rollbacks) by state.", labels=["state"]
        )
        for state in STATES:
            by_state.add_metric([state], states.get(state, 0))
        yield by_state

        rolled = CounterMetricFamily(
            "homeport_rollbacks",
            "Rollbacks that went live, by cause: api, hook, ... or automatic (a failed release).",
            labels=["cause"],
        )
        for row in rollbacks:
            rolled.add_metric([row["source"]], row["n"])
        rolled.add_metric(["automatic"], automatic)
        yield rolled

        last_live = GaugeMetricFamily(
            "homeport_last_live_release_timestamp_seconds",
            "When the app's live release went live (unix time).",
            labels=["app", "version"],
        )
        for row in live:
            last_live.add_metric([row["app"], str(row["version"])], row["updated_at"])
        yield last_live

        durations = HistogramMetricFamily(
            "homeport_deploy_stage_duration_seconds",
            "How long each stage of a job took: fetch, build (and push), rollout.",
            labels=["stage"],
        )
        for row in stages:
            stage, count, total = row[0], row[1], row[2] or 0.0
            cumulative = [(str(b), row[3 + i] or 0) for i, b in enumerate(BUCKETS)]
            durations.add_metric([stage], [*cumulative, ("+Inf", count)], total)
        yield durations

        cache = self.cache_bytes()
        engine = GaugeMetricFamily(
            "homeport_docker_up", "Whether the Docker engine answered the last size query."
        )
        engine.add_metric([], 0 if cache is None else 1)
        yield engine
        if cache is not None:
            yield GaugeMetricFamily(
                "homeport_build_cache_bytes",
                "Bytes held by the Docker engine's build cache.",
                value=cache,
            )


def exposition(data_dir: Path, cache_bytes: Callable[[], int | None] = _cache.get) -> bytes:
    """The Prometheus text format of every metric, as of now."""
    from prometheus_client import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(HomeportCollector(data_dir, cache_bytes))
    return generate_latest(registry)
