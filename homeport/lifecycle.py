"""The application layer: the one door through which work enters, the one writer of records.

Work enters through `submit_deploy`, `submit_rollback` and `submit_config` (git push,
webhooks, the API and the CLI all call them), and a cron run started by hand through
`start_cron_run`. Recording and queueing are one step: if the queue cannot take a job within
QUEUE_WAIT, the job is recorded failed with the reason, so a push the user was told failed
never deploys later. An app leaves through `destroy_app`.

A job's runner (pipeline.run_app) then moves the job and its release through their states
with the functions below; the builder and the deployer only report outcomes. `settle` is
the one place that decides a release left `deploying` is stuck and gives it the status the
cluster shows, and `recover` the one place that restarts an app whose runner died.

Job:      queued -> running -> succeeded | failed;  queued -> superseded | failed (not queued)
          running -> superseded (a newer job was queued before this one's rollout)
Release:  deploying -> live -> superseded | rolled_back;  deploying -> failed | superseded
"""

from __future__ import annotations

import logging
import shlex
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import redis
from redis.exceptions import RedisError

from homeport import apps, db, destroy, events, joblog, jobs, notify, queue, registry, releases
from homeport.config import Settings
from homeport.errors import Conflict, HomeportError, InvalidInput, NotFound, StageError
from homeport.manifest import read_manifest
from homeport.releases import Release, ReleaseUnavailable

if TYPE_CHECKING:
    from homeport.deployer.deploy import Failed, Outcome
    from homeport.deployer.spec import RunSpec

log = logging.getLogger(__name__)

# Seconds a submission waits for the queue: long enough for `homeport up` to restart its
# Redis (within 2 s of it dying), short enough that a push never hangs on a dead one.
QUEUE_WAIT = 6.0
QUEUE_RETRY = 0.25
# GitHub shows deliveries for 30 days and can redeliver them: dedup keys live as long.
DEDUP_SECONDS = 30 * 24 * 3600
SHUTDOWN_REASON = "stopped: homeport was shut down; push again to retry"
# Job sources that are a provider's webhook (the release's cause is `webhook`).
WEBHOOK_SOURCES = frozenset({"github", "gitea", "gitlab"})
ORPHAN_REASON = "the worker stopped while this job ran; push again to retry"
HUNG_REASON = "the job process stopped responding and was killed; push again to retry"

Emit = Callable[[str], None]


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


class ReleaseFailed(StageError):
    """A release did not go live; the message names it and what runs instead."""


# Not a HomeportError: an outcome of the job, not an error anyone has to act on.
class Superseded(Exception):
    """A newer job of the app is queued: this one ends before it changes the cluster."""

    def __init__(self, newer: jobs.Job) -> None:
        super().__init__(f"superseded by {newer.commit[:12]}")
        self.newer = newer


# -- intake --------------------------------------------------------------------------------


def output(settings: Settings, job: jobs.Job) -> joblog.JobLog:
    """The job's output, masked with every secret homeport knows."""
    return joblog.JobLog(
        joblog.log_path(settings.data_dir, job.app, job.id),
        joblog.Masker(settings.secrets()),
        settings.max_log_bytes,
    )


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
                    _fail_orphans(settings, app, ORPHAN_REASON)
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
    apps.check_app_name(app)
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
    """The env Secret a release runs with (deploy.secret_of, without loading the client)."""
    from homeport.deployer.objects import release_secret_name

    return str(release.config.get("secret") or release_secret_name(release.app, release.version))


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
    if target.status not in releases.WAS_LIVE:
        detail = f": {target.reason}" if target.reason else ""
        raise ReleaseUnavailable(
            f"{what} never went live ({target.status}{detail}); roll back to a release that did"
        )
    current = releases.live(settings.data_dir, app)
    if current is not None and current.version == target.version:
        raise ReleaseUnavailable(
            f"{what} is already live; name another release with `homeport rollback {app} --to N`"
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
    releases.require_image(target)
    return target


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
    live = releases.live(settings.data_dir, apps.check_app_name(app))
    if live is None:
        raise Conflict(f"{app} has no live release, so no cron to run; push to it first")
    entries = _deployer().spec_of(live).cron
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise NotFound(
            f"{app} v{live.version} has no cron {name!r} (its cron entries: {known}); add"
            f" [cron.{name}] to homeport.toml and push, or see `homeport cron {app}`"
        )
    from homeport.deployer import cron

    return cron.run_now(settings, app, name)


@dataclass(frozen=True)
class Stored:
    """A config change kept for a later release; `note` says which; `config`: the app's
    config names now."""

    note: str
    config: tuple[str, ...] = ()


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
    from homeport.deployer import appconfig

    apps.check_app_name(app)
    names = list(unset)
    now: list[str] = []
    try:
        if values:
            now = appconfig.set_values(settings, app, values)
        if names:
            now = appconfig.unset(settings, app, names)
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


# -- a runner's jobs -------------------------------------------------------------------------


def claim(settings: Settings, conn: redis.Redis, app: str) -> jobs.Job | None:
    """Start the app's newest queued job; older queued ones are superseded by it."""
    with queue.locked(conn, app):
        job, superseded = jobs.claim_next(settings.data_dir, app)
    for old in superseded:
        output(settings, old).write(
            f"-----> superseded by a newer push ({job.commit[:12] if job else '?'})"
        )
    return job


def check_newest(settings: Settings, job: jobs.Job) -> None:
    """Raise Superseded if a newer job of the app is queued.

    Called once the image is built: rolling it out would only be replaced by the newer job at
    once, so a burst of pushes to one app rolls out its last commit, not every one.
    """
    # A queued config change does not stop a deploy: the deploy reads the config as it is.
    newer = jobs.newest_queued(settings.data_dir, job.app, skip_kind=jobs.CONFIG)
    if newer is not None:
        raise Superseded(newer)


def newer_queued(settings: Settings, job: jobs.Job) -> bool:
    """Whether a newer deploy of the app waits: asked while the job builds, to stop early.

    As in check_newest, a queued config change is not one.
    """
    return jobs.newest_queued(settings.data_dir, job.app, skip_kind=jobs.CONFIG) is not None


def supersede(settings: Settings, job: jobs.Job, newer: jobs.Job) -> None:
    output(settings, job).write(
        f"-----> superseded by a newer push ({newer.commit[:12]}); not rolled out"
    )
    jobs.finish(settings.data_dir, job.id, jobs.SUPERSEDED, f"superseded by {newer.commit[:12]}")


def hand_over(settings: Settings, conn: redis.Redis, app: str) -> None:
    """A runner ends: queue the next one if work arrived meanwhile."""
    with queue.locked(conn, app):
        queue.runner_ended(conn, app)
        if not queue.runner_is_current(conn, app) and queue.runner_alive(conn, app):
            return  # another runner of the app was queued meanwhile; it takes the work
        if jobs.has_queued(settings.data_dir, app):
            queue.enqueue_runner(settings, conn, app)
        else:
            queue.forget_runner(conn, app)


def succeed(settings: Settings, job: jobs.Job, release: int | None) -> None:
    jobs.finish(settings.data_dir, job.id, jobs.SUCCEEDED, "", release)


def fail(settings: Settings, job: jobs.Job, reason: str) -> None:
    """Record the job failed (reason already masked) and tell whoever wants to know."""
    jobs.finish(settings.data_dir, job.id, jobs.FAILED, reason)
    _announce_failure(settings, job, reason)


@contextmanager
def stage(settings: Settings, job: jobs.Job, name: str) -> Iterator[None]:
    """Record how long a stage of the job (fetch, build, rollout) took, however it ended."""
    started = time.monotonic()
    try:
        yield
    finally:
        with db.connect(settings.data_dir) as tx:
            tx.execute(
                "INSERT OR REPLACE INTO job_stages (job_id, app, stage, seconds, recorded_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (job.id, job.app, name, time.monotonic() - started, db.now()),
            )


# -- events ----------------------------------------------------------------------------------


def _job_of(settings: Settings, job_id: str | None) -> jobs.Job | None:
    if not job_id:
        return None
    try:
        return jobs.get(settings.data_dir, job_id)
    except HomeportError:
        return None


def _announce_live(settings: Settings, release: Release) -> None:
    notify.send(settings, events.release_live(release, _job_of(settings, release.job_id)))


def _announce_failure(settings: Settings, job: jobs.Job, reason: str) -> None:
    """release.failed when the job's release never went live, else job.failed."""
    with db.connect(settings.data_dir) as tx:
        row = tx.execute(
            "SELECT r.version, a.restored FROM releases r LEFT JOIN auto_rollbacks a"
            " ON a.app = r.app AND a.version = r.version"
            " WHERE r.job_id = ? AND r.status = 'failed' ORDER BY r.version DESC LIMIT 1",
            (job.id,),
        ).fetchone()
    if row is None:
        notify.send(settings, events.job_failed(job, reason))
        return
    release = releases.get(settings.data_dir, job.app, int(row["version"]))
    notify.send(settings, events.release_failed(release, job, reason, row["restored"]))


def record_image(settings: Settings, job: jobs.Job, image: str) -> None:
    jobs.record_image(settings.data_dir, job.id, image)


def announce_cron_failure(
    settings: Settings, *, app: str, run: str, commit: str, reason: str, cause: str = "cron"
) -> None:
    """Tell the notification targets a scheduled run failed (reason already masked).

    `run` names the run's output, as a job id does, for the delivery's outcome line.
    """
    event = events.Event(
        event=events.CRON_FAILED,
        app=app,
        version=None,
        commit=commit,
        cause=cause,
        reason=reason,
        job=run,
    )
    notify.send(settings, event)


def _fail_orphans(settings: Settings, app: str, reason: str) -> None:
    for job_id in jobs.fail_running(settings.data_dir, app, reason):
        path = joblog.log_path(settings.data_dir, app, job_id)
        joblog.JobLog(path, max_bytes=settings.max_log_bytes).write(f"-----> {reason}")
        orphan = _job_of(settings, job_id)
        if orphan is not None:
            _announce_failure(settings, orphan, reason)


def stopped(settings: Settings, app: str) -> None:
    """The app's job process was killed while homeport stopped: its job is recorded stopped.

    The runner's queue is restarted by recover() once its heartbeat has expired.
    """
    _fail_orphans(settings, app, SHUTDOWN_REASON)


def recover(settings: Settings, conn: redis.Redis) -> None:
    """Restart queues whose runner died (worker killed, job process hung, Redis lost data)."""
    waiting = set(jobs.apps_with(settings.data_dir, jobs.QUEUED))
    waiting |= set(jobs.apps_with(settings.data_dir, jobs.RUNNING))
    for app in sorted(waiting):
        with queue.locked(conn, app):
            if queue.runner_alive(conn, app):
                continue
            hung = queue.kill_stuck_runner(conn, app)
            _fail_orphans(settings, app, HUNG_REASON if hung else ORPHAN_REASON)
            if jobs.has_queued(settings.data_dir, app):
                log.info("restarting the queue of %s", app)
                queue.enqueue_runner(settings, conn, app)
            else:
                queue.forget_runner(conn, app)


# -- releases ------------------------------------------------------------------------------


def _deployer() -> Any:
    # The Kubernetes client is large: the receiver imports this module but never deploys.
    from homeport.deployer import deploy

    return deploy


def _failure_text(app: str, version: int, outcome: Failed, namespace: str) -> str:
    """The user's line for a release that did not go live, by what happened to the previous."""
    head = f"{app} v{version} failed: {outcome.reason}"
    before = outcome.previous
    if outcome.restored == "none":
        return (
            f"{head}; there is no earlier release to roll back to, so v{version} was left as it"
            " is; fix the app and push again"
        )
    if outcome.restored == "untouched":
        return f"{head}; v{before} is still live"
    if outcome.restored == "kept":
        return (
            f"{head}; automatic rollback is off (HOMEPORT_ROLLBACK_ON_FAILURE), roll back with"
            f" `homeport rollback {app} --to {before}`"
        )
    if outcome.restored == "failed":
        return (
            f"{head}; rolling back to v{before} failed too: {outcome.restore_error}; check the"
            f" pods with `kubectl -n {namespace} get pods -l {_deployer().objects.selector(app)}`"
        )
    return f"{head}; rolled back to v{before}"


def _conclude(settings: Settings, release: Release, outcome: Outcome, emit: Emit) -> Release:
    """Record how a rollout ended; raise ReleaseFailed with the user's line if not live."""
    deployer = _deployer()
    app, version = release.app, release.version
    if not isinstance(outcome, deployer.Failed):
        replaced: releases.Status = "rolled_back" if release.rollback_of else "superseded"
        releases.mark_live(settings.data_dir, app, version, replaced=replaced)
        emit(f"-----> {app} v{version} is live")
        live = releases.get(settings.data_dir, app, version)
        _announce_live(settings, live)
        return live
    releases.mark(settings.data_dir, app, version, "failed", outcome.reason)
    if outcome.restored == "restored" and outcome.previous is not None:
        with db.connect(settings.data_dir) as tx:
            tx.execute(
                "INSERT OR REPLACE INTO auto_rollbacks (app, version, restored, at)"
                " VALUES (?, ?, ?, ?)",
                (app, version, outcome.previous, db.now()),
            )
    raise ReleaseFailed(_failure_text(app, version, outcome, settings.namespace))


def _roll(
    settings: Settings,
    release: Release,
    previous: Release | None,
    env: dict[str, str] | None,
    emit: Emit,
) -> Release:
    deployer = _deployer()
    attempt = deployer.Attempt()
    try:
        outcome = deployer.roll_out(
            settings, release, previous, env=env, attempt=attempt, emit=emit
        )
    except HomeportError as exc:
        # Nothing was applied (credentials, namespace): the previous release still serves.
        before = previous.version if previous else None
        outcome = deployer.Failed(str(exc), before, "untouched" if previous else "none")
    except BaseException as exc:
        # Stopped from outside (job timeout, shutdown). Once applied, only the cluster knows
        # how it ends: the release stays deploying, and `settle` gives it its status.
        reason = f"interrupted mid-rollout ({type(exc).__name__})"
        status: releases.Status = "deploying" if attempt.applied else "failed"
        releases.mark(settings.data_dir, release.app, release.version, status, reason)
        raise
    return _conclude(settings, release, outcome, emit)


def deploy_release(
    settings: Settings, job: jobs.Job, *, image: str, spec: RunSpec, emit: Emit
) -> Release:
    """Roll a built image out as the app's next release; ReleaseFailed if it does not go live.

    Called by the app's only running job: a release still `deploying` was left by a runner
    that died, and is settled by what the cluster runs before another starts.
    """
    deployer = _deployer()
    settle(settings, job.app)
    try:
        registry.split(image)
    except ValueError as exc:
        raise StageError(
            f"cannot deploy {job.app}: {exc}; the builder must push by digest"
        ) from exc
    env = deployer.release_env(settings, job.app, spec)
    previous = releases.live(settings.data_dir, job.app)
    config = deployer.snapshot(spec, env)
    shared = deployer.same_env_secret(settings, previous, env)
    if shared:
        config["secret"] = shared
    release = releases.create(
        settings.data_dir,
        app=job.app,
        commit=job.commit,
        image=image,
        config=config,
        job_id=job.id,
        cause="webhook" if job.source in WEBHOOK_SOURCES else "push",
    )
    # None: the release runs with the live release's Secret, which holds the same env.
    new_env = None if shared else env
    if spec.release_command:
        _release_command(settings, release, previous, spec, env=new_env, emit=emit)
    emit(f"-----> Rolling out {job.app} v{release.version} ({deployer.short_image(image)})")
    return _roll(settings, release, previous, new_env, emit)


def _release_command(
    settings: Settings,
    release: Release,
    previous: Release | None,
    spec: RunSpec,
    *,
    env: Mapping[str, str] | None,
    emit: Emit,
) -> None:
    """Run the release's command before any web pod changes; ReleaseFailed if it fails.

    `env` creates the release's Secret first (None: the release reuses an existing one).
    A failure leaves the previous release untouched: nothing of the new one was applied.
    """
    deployer = _deployer()
    from homeport.deployer import release_job

    app, version = release.app, release.version
    shown = shlex.join(spec.release_command)
    emit(f"-----> Running the release command of {app} v{version}: {shown}")
    try:
        if env is not None:
            deployer.create_secret(settings, release, env)
        outcome = release_job.run(
            settings, release, spec, secret_name=deployer.secret_of(release), emit=emit
        )
    except HomeportError as exc:
        outcome = release_job.CommandFailed(f"release command could not run: {exc}")
    except BaseException as exc:
        reason = f"interrupted while the release command ran ({type(exc).__name__})"
        releases.mark(settings.data_dir, app, version, "failed", reason)
        raise
    if isinstance(outcome, release_job.CommandFailed):
        releases.mark(settings.data_dir, app, version, "failed", outcome.reason)
        kept = (
            f"v{previous.version} is still live"
            if previous is not None
            else "nothing was rolled out; fix the command and push again"
        )
        raise ReleaseFailed(f"{app} v{version} failed: {outcome.reason}; {kept}")
    emit(f"       release command finished in {outcome.seconds:.1f}s")


def rollback_release(settings: Settings, job: jobs.Job, emit: Emit) -> Release:
    """Deploy an earlier release's digest and config again, as a new release (no rebuild)."""
    deployer = _deployer()
    settle(settings, job.app)
    version = job.params.get("version")
    target = rollback_target(settings, job.app, int(version) if version is not None else None)
    if not deployer.has_secret(settings, target):
        raise ReleaseUnavailable(
            f"{job.app} v{target.version} cannot be restored: its config Secret"
            f" {deployer.secret_of(target)} was deleted (outside the last"
            f" {settings.keep_releases} releases); deploy its commit again instead"
        )
    current = releases.live(settings.data_dir, job.app)
    release = releases.create(
        settings.data_dir,
        app=job.app,
        commit=target.commit,
        image=target.image,
        config={**target.config, "secret": deployer.secret_of(target)},
        job_id=job.id,
        rollback_of=target.version,
        cause="rollback",
    )
    emit(
        f"-----> Rolling back {job.app} to v{target.version} as v{release.version}"
        f" ({deployer.short_image(target.image)})"
    )
    spec = deployer.spec_of(target)
    if spec.release_command and spec.release_rerun_on_rollback:
        emit("       the release command runs again: [release] rerun_on_rollback = true")
        _release_command(settings, release, current, spec, env=None, emit=emit)
    elif spec.release_command:
        emit(
            "       the release command is not run for a rollback"
            " (set [release] rerun_on_rollback = true to run it)"
        )
    return _roll(settings, release, current, None, emit)


def config_release(
    settings: Settings, job: jobs.Job, emit: Emit, config: Mapping[str, str]
) -> Release:
    """Roll the live image out again with `config` (the app's config as the job found it),
    as a new release.

    A config that keeps the app from becoming ready is rolled back to the previous release,
    whose Secret holds the previous config.
    """
    deployer = _deployer()
    settle(settings, job.app)
    current = releases.live(settings.data_dir, job.app)
    if current is None:
        raise StageError(
            f"{job.app} has no live release to apply the config to; it is stored and applies"
            " with the next deploy"
        )
    # The release record keeps env names only: [env] values come from the live commit.
    manifest = read_manifest(apps.repo_path(settings.data_dir, job.app), current.commit)
    spec = replace(deployer.spec_of(current), env=dict(manifest.env))
    env = deployer.merged_env(spec, config)
    release = releases.create(
        settings.data_dir,
        app=job.app,
        commit=current.commit,
        image=current.image,
        config=deployer.snapshot(spec, env),
        job_id=job.id,
        cause="config",
    )
    emit(
        f"-----> Rolling out {job.app} v{release.version}: new config on the image of"
        f" v{current.version} ({deployer.short_image(current.image)})"
    )
    if spec.release_command:
        emit("       the release command is not run for a config change (same image)")
    try:
        return _roll(settings, release, current, env, emit)
    except ReleaseFailed as exc:
        raise ReleaseFailed(
            f"{exc}; the new config stays stored and applies with the next deploy: change it"
            f" with `homeport config set|unset {job.app}`"
        ) from exc


def settle(settings: Settings, app: str, emit: Emit | None = None) -> list[Release]:
    """Give releases of the app left `deploying` the status the cluster shows.

    Call it only where no runner of the app is alive (a runner at its start, or recovery):
    then a release still `deploying` was left by a runner that died or was stopped.
    """
    deployer = _deployer()
    say: Emit = emit or (lambda line: log.info("%s", line.strip(" ->")))
    settled = []
    for release in releases.deploying(settings.data_dir, app):
        seen = deployer.observe(settings, release)
        if seen.running != release.version:
            if seen.started:
                status: releases.Status = "failed"
                reason = f"interrupted mid-rollout; the cluster runs {seen.serving}"
            else:
                status = "superseded"
                reason = f"never started (interrupted); the cluster runs {seen.serving}"
            releases.mark(settings.data_dir, app, release.version, status, reason)
            live = releases.live(settings.data_dir, app)
            if seen.started and live is not None and seen.running == live.version:
                # Its processes may have rolled out before web: they go back to the live one's.
                try:
                    deployer.realign(settings, live, say)
                except HomeportError as exc:
                    log.warning("settling %s: processes not restored: %s", app, exc)
        else:
            # The cluster runs this release: follow it for what is left of its health timeout.
            spec = deployer.spec_of(release)
            left = max(int(spec.health_timeout - (time.time() - release.created_at)), 5)
            previous = releases.live(settings.data_dir, app)
            outcome = deployer.resume(settings, release, previous, left, say)
            try:
                _conclude(settings, release, outcome, say)
            except ReleaseFailed as exc:
                log.warning("settling %s: %s", app, exc)
        settled.append(releases.get(settings.data_dir, app, release.version))
    return settled


def settle_abandoned(settings: Settings, conn: redis.Redis) -> None:
    """Settle `deploying` releases of apps whose runner is gone; never fails the caller."""
    for app in sorted({r.app for r in releases.deploying(settings.data_dir)}):
        try:
            if queue.runner_alive(conn, app):
                continue  # mid-rollout on a live runner
            settle(settings, app)
        except (HomeportError, RedisError) as exc:
            log.warning("could not check the releases %s left deploying: %s", app, exc)


def retained(
    every: list[Release], current: Release | None, keep: int
) -> tuple[list[Release], list[Release]]:
    """Split releases (newest first) into kept and dropped: the newest `keep` distinct images
    and every release running one of them, plus the live release."""
    digests: list[str] = []
    for release in every:
        if release.digest not in digests and len(digests) < keep:
            digests.append(release.digest)
    kept = [r for r in every if r.digest in digests or r == current]
    return kept, [r for r in every if r not in kept]


def _pushed(settings: Settings, app: str) -> dict[str, set[str]]:
    """Digests homeport pushed for the app, as its records say, with the tags it gave them."""
    from homeport.builder.build import image_tag

    records = [(r.commit, r.image) for r in releases.history(settings.data_dir, app)]
    records += jobs.pushed_images(settings.data_dir, app)
    pushed: dict[str, set[str]] = {}
    for commit, image in records:
        if "@" in image:
            pushed.setdefault(image.rpartition("@")[2], set()).add(image_tag(commit))
    return pushed


def _drop_release_jobs(settings: Settings, app: str, dropped: list[Release]) -> None:
    """Finished release-command Jobs go with their release's retention."""
    from homeport.deployer import release_job

    try:
        release_job.drop_jobs(settings, app, {r.version for r in dropped})
    except HomeportError as exc:
        log.warning("release command Jobs of %s were not cleaned up: %s", app, exc)


def keep_releases(settings: Settings, app: str, emit: Emit) -> None:
    """Drop images and Secrets of releases outside retention; never fails the deploy.

    Retention counts distinct images, so rollbacks to one image never evict newer ones.
    Only images homeport's records say it pushed are deleted: other tools may push to the
    same registry repository, and their images are not homeport's to remove.
    """
    from homeport.builder.build import remove_old_images

    deployer = _deployer()
    every = releases.history(settings.data_dir, app)
    kept, dropped = retained(every, releases.live(settings.data_dir, app), settings.keep_releases)
    pushed = _pushed(settings, app)
    if dropped:
        _drop_release_jobs(settings, app, dropped)
    if not dropped and set(pushed) <= {r.digest for r in kept}:
        # Nothing falls outside retention: spare the cluster, registry and engine the calls.
        return
    try:
        keep = deployer.keep_digests(settings, kept, dropped)
        removable = set(pushed) - keep
        own_tags = set().union(*pushed.values())
        removed = registry.prune(settings.registry, app, removable, own_tags)
        untagged = remove_old_images(settings.registry, app, removable, own_tags)
    except HomeportError as exc:
        log.warning("retention of %s skipped: %s", app, exc)
        emit(f"       (old images were not cleaned up: {exc})")
        return
    if removed or untagged:
        emit(
            f"       removed {len(removed)} image(s) from the registry and {len(untagged)} "
            "from the Docker engine (releases no longer kept)"
        )


# -- removal -------------------------------------------------------------------------------


def destroy_app(settings: Settings, app: str, *, delete_volumes: bool) -> destroy.Destroyed:
    """Remove the app: cluster objects, the images homeport pushed, repository, logs, records.

    Refused (Conflict) while a job of the app is queued or running; no job can be created
    for it until the removal ends. Volume claims stay unless `delete_volumes`. Every step
    is idempotent, so a removal that failed halfway can simply be asked for again.
    """
    from homeport.builder.build import remove_old_images
    from homeport.deployer import teardown

    apps.check_app_name(app)
    if not apps.exists(settings.data_dir, app):
        raise NotFound(f"app {app!r} does not exist; `homeport apps` lists the apps")
    with db.connect(settings.data_dir) as tx:
        destroy.begin(tx, app)
    try:
        removed = teardown.remove_app(
            settings, app, destroy.secret_names(settings, app), delete_volumes=delete_volumes
        )
        pushed = _pushed(settings, app)
        own_tags: set[str] = set().union(*pushed.values()) if pushed else set()
        deleted = registry.prune(settings.registry, app, set(pushed), own_tags)
        remove_old_images(settings.registry, app, set(pushed), own_tags)
        with db.connect(settings.data_dir) as tx:
            destroy.forget(tx, app)
        destroy.remove_files(settings, app)
    finally:
        with db.connect(settings.data_dir) as tx:
            destroy.end(tx, app)
    log.info(
        "destroyed %s (%d cluster objects, %d images)", app, len(removed.deleted), len(deleted)
    )
    return destroy.Destroyed(
        app, settings.namespace, removed.deleted, len(deleted), removed.kept_claims
    )


# -- one-off commands ----------------------------------------------------------------------


def start_run(
    settings: Settings, *, app: str, command: object, process: str = "web"
) -> dict[str, Any]:
    """Start a one-off command from the app's live release; its status (with the run id).

    The run's pod is its record (see deployer/runs.py): nothing is written here.
    """
    from homeport.deployer import runs

    argv = runs.check_command(command)
    release = releases.live(settings.data_dir, app)
    if release is None:
        raise Conflict(
            f"app '{app}' has no live release to run a command in; push to deploy it first"
            f" (`homeport releases {app}` shows its releases)"
        )
    status: dict[str, Any] = runs.start(settings, release, argv, process).to_dict()
    return status
