"""Work entering: deploys, rollbacks and config changes recorded and queued as one step.

Git push, webhooks, the API and the CLI all enter here. If the queue cannot take a job within
QUEUE_WAIT, the job is recorded failed with the reason, so a push the user was told failed never
deploys later.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError

from homeport import apps, names, registry
from homeport.deployer import appconfig, cron, deploy
from homeport.errors import Conflict, InvalidInput, NotFound
from homeport.lifecycle import queue, runner
from homeport.lifecycle.common import ORPHAN_REASON, output
from homeport.records import db, jobs, releases
from homeport.release import WAS_LIVE, Release, ReleaseUnavailable
from homeport.settings import Settings

# Seconds a submission waits for the queue: long enough for `homeport up` to restart its
# Redis (within 2 s of it dying), short enough that a push never hangs on a dead one.
QUEUE_WAIT = 6.0
QUEUE_RETRY = 0.25
# GitHub shows deliveries for 30 days and can redeliver them: dedup keys live as long.
DEDUP_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Submitted:
    """A job that entered the queue (`config`: the app's config names, for a config change)."""

    job: jobs.Job
    target: Release | None = None
    config: tuple[str, ...] = ()


@dataclass(frozen=True)
class Duplicate:
    """A submission whose dedup key was seen before: the job it made then."""

    job_id: str


@dataclass(frozen=True)
class Stored:
    """A config change kept for a later release; `note` says which; `config`: the app's
    config names now."""

    note: str
    config: tuple[str, ...] = ()


def _queue(settings: Settings, conn: redis.Redis, app: str) -> None:
    """Make sure a runner will pick up the app's queued jobs, waiting out a Redis restart."""
    deadline = time.monotonic() + QUEUE_WAIT
    while True:
        try:
            # Fast path without the lock: a runner that has not started yet claims the newest
            # job when it starts, and the job is already recorded.
            if queue.runner_queued(conn, app):
                return
            with queue.locked(conn, app):
                if not queue.runner_alive(conn, app):
                    runner.fail_orphans(settings, app, ORPHAN_REASON)
                    queue.enqueue_runner(settings, conn, app)
            return
        except RedisError as exc:
            if time.monotonic() + QUEUE_RETRY > deadline:
                raise queue.unavailable(app, exc) from exc
            time.sleep(QUEUE_RETRY)


def _enter(settings: Settings, conn: redis.Redis, job: jobs.Job) -> None:
    """Queue a recorded job; if that fails, the job fails with the reason, never left queued."""
    try:
        _queue(settings, conn, job.app)
    except queue.QueueUnavailable as exc:
        reason = f"not queued: {exc}"
        if jobs.fail_if_queued(settings.data_dir, job.id, reason):
            output(settings, job).write(f"-----> {reason}")
            raise
        # A worker that could reach Redis already took the job: it runs after all.


def submit_deploy(
    settings: Settings,
    conn: redis.Redis,
    *,
    app: str,
    ref: str,
    commit: str,
    old_sha: str,
    source: str,
    params: dict[str, Any] | None = None,
    dedup: Iterable[str] = (),
) -> Submitted | Duplicate:
    """Record and queue a deploy of `commit`; creates the app on its first deploy.

    `dedup` keys (webhook delivery ids, body digests) seen before make this a duplicate:
    the earlier job is returned and nothing is queued.
    """
    names.check_app_name(app)
    keys = list(dedup)
    with db.connect(settings.data_dir) as tx:
        earlier = _seen(tx, keys)
        if earlier is not None:
            return Duplicate(earlier)
        if not apps.exists(settings.data_dir, app):
            apps.create_repo(settings.data_dir, app, settings.deploy_branch)
        job = jobs.create(
            settings.data_dir,
            app=app,
            kind="deploy",
            ref=ref,
            commit=commit,
            old_sha=old_sha,
            source=source,
            params=params,
            conn=tx,
        )
        now = db.now()
        tx.execute("DELETE FROM deliveries WHERE received_at < ?", (now - DEDUP_SECONDS,))
        tx.executemany(
            "INSERT INTO deliveries (id, job_id, received_at) VALUES (?, ?, ?)",
            [(key, job.id, now) for key in keys],
        )
    try:
        _enter(settings, conn, job)
    except queue.QueueUnavailable:
        # Not deployed: the provider's redelivery must be able to try again.
        with db.connect(settings.data_dir) as tx:
            tx.execute("DELETE FROM deliveries WHERE job_id = ?", (job.id,))
        raise
    return Submitted(job)


def _seen(tx: sqlite3.Connection, keys: list[str]) -> str | None:
    for key in keys:
        row = tx.execute("SELECT job_id FROM deliveries WHERE id = ?", (key,)).fetchone()
        if row is not None:
            return str(row["job_id"])
    return None


def seen(settings: Settings, keys: Iterable[str]) -> Duplicate | None:
    """The job an earlier submission with one of these dedup keys made, if any."""
    with db.connect(settings.data_dir) as tx:
        earlier = _seen(tx, list(keys))
    return Duplicate(earlier) if earlier else None


def _env_secret(release: Release) -> str:
    """The env Secret a release runs with."""
    return deploy.secret_of(release)


def rollback_target(settings: Settings, app: str, version: int | None) -> Release:
    """The release a rollback restores, or NotFound / ReleaseUnavailable saying why not.

    Default: the newest release before the live one that was itself live. Refused: a release
    that never went live, the live one, one running the live image, one whose image is gone.
    """
    if version is None:
        target = releases.rollback_target(settings.data_dir, app)
    else:
        target = releases.get(settings.data_dir, app, version)
    what = f"{app} v{target.version}"
    if target.status not in WAS_LIVE:
        detail = f": {target.reason}" if target.reason else ""
        raise ReleaseUnavailable(
            f"{what} never went live ({target.status}{detail}); roll back to a release that did"
        )
    current = releases.live(settings.data_dir, app)
    if current is not None and current.version == target.version:
        raise ReleaseUnavailable(
            f"{what} is already live; name another release with `homeport rollback {app} vN`"
        )
    if (
        current is not None
        and current.digest == target.digest
        and _env_secret(current) == _env_secret(target)
    ):
        # Same image with another config (a config release) is a change worth rolling to.
        raise ReleaseUnavailable(
            f"{what} runs the same image and config as the live v{current.version}; nothing"
            " would change"
        )
    require_image(target)
    return target


def require_image(release: Release) -> None:
    """Raise ReleaseUnavailable unless the registry still holds the release's image."""
    what = f"{release.app} v{release.version}"
    try:
        present = registry.has_image(release.image)
    except registry.RegistryUnreachable:
        raise  # the registry is down, not the release gone: a 503, try again later
    except (registry.RegistryError, ValueError) as exc:
        raise ReleaseUnavailable(f"{what} cannot be restored: {exc}") from exc
    if not present:
        raise ReleaseUnavailable(
            f"{what} cannot be restored: its image {release.image} is no longer in the registry"
            " (pruned or deleted); deploy its commit again to rebuild it"
        )


def submit_rollback(
    settings: Settings, conn: redis.Redis, *, app: str, version: int | None, source: str
) -> Submitted:
    """Check the target, then record and queue a rollback to it."""
    target = rollback_target(settings, app, version)
    job = jobs.create(
        settings.data_dir,
        app=app,
        kind="rollback",
        ref=f"refs/heads/{settings.deploy_branch}",
        commit=target.commit,
        old_sha="0" * 40,
        source=source,
        params={"version": target.version},
    )
    _enter(settings, conn, job)
    return Submitted(job, target=target)


def start_cron_run(settings: Settings, app: str, name: str) -> str:
    """Start a run of the live release's cron entry `name` now; returns the run's Job name."""
    live = releases.live(settings.data_dir, names.check_app_name(app))
    if live is None:
        raise Conflict(f"{app} has no live release, so no cron to run; push to it first")
    entries = deploy.spec_of(live).cron
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise NotFound(
            f"{app} v{live.version} has no cron {name!r} (its cron entries: {known}); add"
            f" [cron.{name}] to homeport.toml and push, or see `homeport cron {app}`"
        )

    return cron.run_now(settings, app, name)


def submit_config(
    settings: Settings,
    conn: redis.Redis,
    *,
    app: str,
    values: Mapping[str, str],
    unset: Iterable[str],
    deploy: bool,
    source: str,
) -> Submitted | Stored:
    """Store a config change, then record and queue a release of it on the live image.

    With `deploy` off, or before the app's first release, the change is only stored.
    """
    names.check_app_name(app)
    unset_names = list(unset)
    now: list[str] = []
    try:
        if values:
            now = appconfig.set_values(settings, app, values)
        if unset_names:
            now = appconfig.unset(settings, app, unset_names)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    current = releases.live(settings.data_dir, app)
    if not deploy:
        return Stored(
            f"stored; applies with the next release of {app} (a push or a config change)",
            tuple(now),
        )
    if current is None:
        return Stored(
            f"stored; {app} has no live release yet, so it applies on the first deploy",
            tuple(now),
        )
    job = jobs.create(
        settings.data_dir,
        app=app,
        kind=jobs.CONFIG,
        ref=f"refs/heads/{settings.deploy_branch}",
        commit=current.commit,
        old_sha="0" * 40,
        source=source,
        params={"base": current.version},
    )
    _enter(settings, conn, job)
    return Submitted(job, target=current, config=tuple(now))
