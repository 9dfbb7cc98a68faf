"""Releases: roll a built image, an earlier release or a new config out, and record how it ended.

The deployer only reports outcomes (`Live`, `Failed`); this module writes the release records
and the user's line. `settle` is the one place that decides a release left `deploying` is stuck
and gives it the status the cluster shows.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Mapping
from dataclasses import replace

import redis
from redis.exceptions import RedisError

from homeport import apps, registry
from homeport.deployer import deploy, objects, release_command
from homeport.deployer.deploy import Failed, Outcome
from homeport.errors import HomeportError, StageError
from homeport.lifecycle import announce, queue
from homeport.lifecycle.common import WEBHOOK_SOURCES, Emit, ReleaseFailed
from homeport.lifecycle.intake import rollback_target
from homeport.manifest import read_manifest
from homeport.records import db, jobs, releases
from homeport.release import Release, ReleaseUnavailable, Status
from homeport.settings import Settings
from homeport.spec import RunSpec

log = logging.getLogger(__name__)


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
            f" `homeport rollback {app} v{before}`"
        )
    if outcome.restored == "failed":
        return (
            f"{head}; rolling back to v{before} failed too: {outcome.restore_error}; check the"
            f" pods with `kubectl -n {namespace} get pods -l {objects.selector(app)}`"
        )
    return f"{head}; rolled back to v{before}"


def _conclude(settings: Settings, release: Release, outcome: Outcome, emit: Emit) -> Release:
    """Record how a rollout ended; raise ReleaseFailed with the user's line if not live."""
    app, version = release.app, release.version
    if not isinstance(outcome, deploy.Failed):
        replaced: Status = "rolled_back" if release.rollback_of else "superseded"
        live = releases.mark_live(settings.data_dir, app, version, replaced=replaced)
        emit(f"-----> {app} v{version} is live")
        announce.release_live(settings, live)
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
    attempt = deploy.Attempt()
    try:
        outcome = deploy.roll_out(settings, release, previous, env=env, attempt=attempt, emit=emit)
    except HomeportError as exc:
        # Nothing was applied (credentials, namespace): the previous release still serves.
        before = previous.version if previous else None
        outcome = deploy.Failed(str(exc), before, "untouched" if previous else "none")
    except BaseException as exc:
        # Stopped from outside (job timeout, shutdown). Once applied, only the cluster knows
        # how it ends: the release stays deploying, and `settle` gives it its status.
        reason = f"interrupted mid-rollout ({type(exc).__name__})"
        status: Status = "deploying" if attempt.applied else "failed"
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
    settle(settings, job.app)
    try:
        registry.split(image)
    except ValueError as exc:
        raise StageError(
            f"cannot deploy {job.app}: {exc}; the builder must push by digest"
        ) from exc
    env = deploy.release_env(settings, job.app, spec)
    previous = releases.live(settings.data_dir, job.app)
    config = deploy.snapshot(spec, env)
    shared = deploy.same_env_secret(settings, previous, env)
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
    emit(f"-----> Rolling out {job.app} v{release.version} ({deploy.short_image(image)})")
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
    app, version = release.app, release.version
    shown = shlex.join(spec.release_command)
    emit(f"-----> Running the release command of {app} v{version}: {shown}")
    try:
        if env is not None:
            deploy.create_secret(settings, release, env)
        outcome = release_command.run(
            settings, release, spec, secret_name=deploy.secret_of(release), emit=emit
        )
    except HomeportError as exc:
        outcome = release_command.CommandFailed(f"release command could not run: {exc}")
    except BaseException as exc:
        reason = f"interrupted while the release command ran ({type(exc).__name__})"
        releases.mark(settings.data_dir, app, version, "failed", reason)
        raise
    if isinstance(outcome, release_command.CommandFailed):
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
    settle(settings, job.app)
    version = job.params.get("version")
    target = rollback_target(settings, job.app, int(version) if version is not None else None)
    if not deploy.has_secret(settings, target):
        raise ReleaseUnavailable(
            f"{job.app} v{target.version} cannot be restored: its config Secret"
            f" {deploy.secret_of(target)} was deleted (outside the last"
            f" {settings.keep_releases} releases); deploy its commit again instead"
        )
    current = releases.live(settings.data_dir, job.app)
    release = releases.create(
        settings.data_dir,
        app=job.app,
        commit=target.commit,
        image=target.image,
        config={**target.config, "secret": deploy.secret_of(target)},
        job_id=job.id,
        rollback_of=target.version,
        cause="rollback",
    )
    emit(
        f"-----> Rolling back {job.app} to v{target.version} as v{release.version}"
        f" ({deploy.short_image(target.image)})"
    )
    spec = deploy.spec_of(target)
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
    settle(settings, job.app)
    current = releases.live(settings.data_dir, job.app)
    if current is None:
        raise StageError(
            f"{job.app} has no live release to apply the config to; it is stored and applies"
            " with the next deploy"
        )
    # The release record keeps env names only: [env] values come from the live commit.
    manifest = read_manifest(apps.repo_path(settings.data_dir, job.app), current.commit)
    spec = replace(deploy.spec_of(current), env=dict(manifest.env))
    env = deploy.merged_env(spec, config)
    release = releases.create(
        settings.data_dir,
        app=job.app,
        commit=current.commit,
        image=current.image,
        config=deploy.snapshot(spec, env),
        job_id=job.id,
        cause="config",
    )
    emit(
        f"-----> Rolling out {job.app} v{release.version}: new config on the image of"
        f" v{current.version} ({deploy.short_image(current.image)})"
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
    say: Emit = emit or (lambda line: log.info("%s", line.strip(" ->")))
    settled = []
    for release in releases.deploying(settings.data_dir, app):
        seen = deploy.observe(settings, release)
        if seen.running != release.version:
            if seen.started:
                status: Status = "failed"
                reason = f"interrupted mid-rollout; the cluster runs {seen.serving}"
            else:
                status = "superseded"
                reason = f"never started (interrupted); the cluster runs {seen.serving}"
            releases.mark(settings.data_dir, app, release.version, status, reason)
            live = releases.live(settings.data_dir, app)
            if seen.started and live is not None and seen.running == live.version:
                # Its processes may have rolled out before web: they go back to the live one's.
                try:
                    deploy.realign(settings, live, say)
                except HomeportError as exc:
                    log.warning("settling %s: processes not restored: %s", app, exc)
        else:
            # The cluster runs this release: follow it for what is left of its health timeout.
            spec = deploy.spec_of(release)
            left = max(int(spec.health_timeout - (time.time() - release.created_at)), 5)
            previous = releases.live(settings.data_dir, app)
            outcome = deploy.resume(settings, release, previous, left, say)
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
