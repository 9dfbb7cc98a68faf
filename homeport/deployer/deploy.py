"""Deploy, roll back and reconcile releases; what the queue tasks call.

A release is immutable: an image digest, run settings and an env Secret `<app>-v<N>` that is
never changed. Rolling back to a release re-applies exactly those, so the old ReplicaSet (and
its pods, if they are still up) is reused and config comes back with the code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from homeport import registry, releases
from homeport.config import Settings
from homeport.deployer import appconfig, objects
from homeport.deployer.errors import ReleaseUnavailable, RolloutError
from homeport.deployer.kube import Kube
from homeport.deployer.rollout import follow
from homeport.deployer.spec import RunSpec
from homeport.errors import HomeportError
from homeport.releases import Release

log = logging.getLogger(__name__)

Emit = Callable[[str], None]
# Seconds beyond twice its health timeout after which a `deploying` release is taken to belong
# to a dead worker (API retries, image pulls and the rollback's own wait fit well inside).
STALE_MARGIN = 300
INTERRUPTED = "interrupted mid-rollout"


def _quiet(line: str) -> None:
    log.info("%s", line.strip(" ->"))


def short_image(image: str) -> str:
    """`127.0.0.1:5000/blog@sha256:1a2b3c4d5e6f…` for people; the full digest is recorded."""
    name, at, digest = image.partition("@")
    if not at:
        return image
    algo, _, hexpart = digest.partition(":")
    return f"{name}@{algo}:{hexpart[:12]}…" if len(hexpart) > 12 else image


def spec_of(release: Release) -> RunSpec:
    """The run settings a release was deployed with."""
    return RunSpec.from_dict(release.config.get("spec") or {})


def secret_of(release: Release) -> str:
    """The env Secret a release runs with (a rollback release reuses its target's)."""
    return str(
        release.config.get("secret") or objects.release_secret_name(release.app, release.version)
    )


def snapshot(spec: RunSpec, env: Mapping[str, str]) -> dict[str, Any]:
    """What the release record keeps: run settings and env names, never env values."""
    data = spec.to_dict()
    data["env"] = {}
    return {"spec": data, "env_keys": sorted(env)}


def _apply(kube: Kube, release: Release) -> None:
    spec = spec_of(release)
    kube.apply(objects.service(release.app, spec))
    ingress = objects.ingress(release.app, spec)
    if ingress is not None:
        kube.apply(ingress)
    else:
        # A release without a host must not leave an earlier release's route behind.
        kube.delete("ingresses", release.app)
    kube.apply(
        objects.deployment(release.app, release.version, release.image, spec, secret_of(release))
    )


def _follow(kube: Kube, release: Release, emit: Emit, timeout: int | None = None) -> float:
    spec = spec_of(release)
    return follow(
        kube,
        app=release.app,
        version=release.version,
        timeout=timeout or spec.health_timeout,
        health_path=spec.health_path,
        port=spec.port,
        emit=emit,
    )


def _create_secret(kube: Kube, release: Release, env: Mapping[str, str]) -> None:
    body = objects.release_secret(release.app, release.version, env)
    if kube.create(body) is not None:
        return
    existing = kube.get("secrets", body["metadata"]["name"]) or {}
    if (existing.get("data") or {}) != body["data"]:
        # Left by an earlier install whose record is gone: its numbers are being reused.
        kube.delete("secrets", body["metadata"]["name"])
        if kube.create(body) is None:
            raise RolloutError(
                f"Secret {body['metadata']['name']} exists with other values and could not be"
                f" replaced; delete it with `kubectl -n {kube.namespace} delete secret"
                f" {body['metadata']['name']}` and deploy again"
            )


def _fail(
    kube: Kube,
    settings: Settings,
    release: Release,
    previous: Release | None,
    reason: str,
    applied: bool,
    emit: Emit,
) -> RolloutError:
    """Record the failure, restore the previous live release, and say what happened."""
    app, version = release.app, release.version
    head = f"{app} v{version} failed: {reason}"
    releases.mark(settings.data_dir, app, version, "failed", reason)
    if previous is None:
        return RolloutError(
            f"{head}; there is no earlier release to roll back to, so v{version} was left as it"
            " is; fix the app and push again"
        )
    if not applied:
        return RolloutError(f"{head}; v{previous.version} is still live")
    if not settings.rollback_on_failure:
        return RolloutError(
            f"{head}; automatic rollback is off (HOMEPORT_ROLLBACK_ON_FAILURE), roll back with"
            f" `homeport rollback {app} {previous.version}`"
        )
    emit(f"-----> {head}")
    emit(f"-----> Rolling back to v{previous.version}")
    try:
        _apply(kube, previous)
        _follow(kube, previous, emit)
    except HomeportError as exc:
        return RolloutError(
            f"{head}; rolling back to v{previous.version} failed too: {exc}; check the pods"
            f" with `kubectl -n {kube.namespace} get pods -l {objects.selector(app)}`"
        )
    emit(f"-----> {app} v{previous.version} is live again")
    return RolloutError(f"{head}; rolled back to v{previous.version}")


def _one_at_a_time(settings: Settings, app: str) -> None:
    """Refuse to start while another rollout of the app runs; settle ones a dead worker left.

    The queue runs one job per app; this guards the record against a second writer anyway.
    """
    stale = False
    for other in releases.deploying(settings.data_dir, app):
        age = time.time() - other.created_at
        # The longest a live worker follows: the release, then a rollback, plus retries.
        abandoned = other.reason.startswith(INTERRUPTED)
        if not abandoned and age < 2 * spec_of(other).health_timeout + STALE_MARGIN:
            raise RolloutError(
                f"{app} v{other.version} is still rolling out (started {age:.0f}s ago); wait for"
                " it to finish, then try again"
            )
        stale = True
    if stale:
        reconcile(settings, app)


def _roll(
    kube: Kube,
    settings: Settings,
    release: Release,
    previous: Release | None,
    emit: Emit,
    env: Mapping[str, str] | None,
    announce: str,
) -> Release:
    applied = False
    try:
        emit(announce)
        kube.ensure_namespace()
        if env is not None:
            _create_secret(kube, release, env)
        _apply(kube, release)
        applied = True
        _follow(kube, release, emit)
    except HomeportError as exc:
        raise _fail(kube, settings, release, previous, str(exc), applied, emit) from exc
    except BaseException as exc:
        # Stopped from outside (job timeout, shutdown). Once applied, only the cluster knows how
        # it ends: the release stays deploying, marked, and reconcile() settles it.
        releases.mark(
            settings.data_dir,
            release.app,
            release.version,
            "deploying" if applied else "failed",
            f"{INTERRUPTED} ({type(exc).__name__})",
        )
        raise
    replaced: releases.Status = "rolled_back" if release.rollback_of else "superseded"
    releases.mark_live(settings.data_dir, release.app, release.version, replaced=replaced)
    emit(f"-----> {release.app} v{release.version} is live")
    return releases.get(settings.data_dir, release.app, release.version)


def deploy(
    settings: Settings,
    *,
    app: str,
    commit: str,
    image_ref: str,
    spec: RunSpec,
    secret_env: Mapping[str, str],
    job_id: str | None = None,
    emit: Emit = _quiet,
) -> Release:
    """Roll a built image out as the app's next release; raise RolloutError if it fails.

    Env: the manifest's [env], then the app's config secrets, then `secret_env` win in that order.
    On failure the previous live release is restored (Settings.rollback_on_failure).
    """
    try:
        registry.split(image_ref)
    except ValueError as exc:
        raise RolloutError(f"cannot deploy {app}: {exc}; the builder must push by digest") from exc
    _one_at_a_time(settings, app)
    with Kube(settings) as kube:
        env = {**spec.env, **appconfig.read(kube, app), **secret_env}
        previous = releases.live(settings.data_dir, app)
        release = releases.create(
            settings.data_dir,
            app=app,
            commit=commit,
            image=image_ref,
            config=snapshot(spec, env),
            job_id=job_id,
        )
        announce = f"-----> Rolling out {app} v{release.version} ({short_image(image_ref)})"
        return _roll(kube, settings, release, previous, emit, env, announce)


def rollback(
    settings: Settings,
    *,
    app: str,
    version: int | None = None,
    job_id: str | None = None,
    emit: Emit = _quiet,
) -> Release:
    """Deploy an earlier release's digest and config again, as a new release (no rebuild).

    Default target: the newest release before the live one that was itself live. Raises NotFound
    for an unknown version and ReleaseUnavailable when its image or Secret is gone.
    """
    _one_at_a_time(settings, app)
    if version is None:
        target = releases.rollback_target(settings.data_dir, app)
    else:
        target = releases.get(settings.data_dir, app, version)
    current = releases.live(settings.data_dir, app)
    what = f"{app} v{target.version}"
    if current is not None and current.version == target.version:
        raise ReleaseUnavailable(f"{what} is already live; name another release to roll back to")
    if target.status not in releases.WAS_LIVE:
        raise ReleaseUnavailable(
            f"{what} never went live ({target.status}"
            f"{': ' + target.reason if target.reason else ''}); roll back to a release that did"
        )
    releases.require_image(target)
    with Kube(settings) as kube:
        secret = secret_of(target)
        if kube.get("secrets", secret) is None:
            raise ReleaseUnavailable(
                f"{what} cannot be restored: its config Secret {secret} was deleted (outside the"
                f" last {settings.keep_releases} releases); deploy its commit again instead"
            )
        release = releases.create(
            settings.data_dir,
            app=app,
            commit=target.commit,
            image=target.image,
            config={**target.config, "secret": secret},
            job_id=job_id,
            rollback_of=target.version,
        )
        announce = (
            f"-----> Rolling back {app} to v{target.version} as v{release.version}"
            f" ({short_image(target.image)})"
        )
        return _roll(kube, settings, release, current, emit, None, announce)


def reconcile(settings: Settings, app: str | None = None, emit: Emit = _quiet) -> list[Release]:
    """Settle releases a dead worker left `deploying`, by what the cluster runs; returns them."""
    settled: list[Release] = []
    stuck = releases.deploying(settings.data_dir, app)
    if not stuck:
        return settled
    with Kube(settings) as kube:
        for release in stuck:
            _settle(kube, settings, release, emit)
            settled.append(releases.get(settings.data_dir, release.app, release.version))
    return settled


def _settle(kube: Kube, settings: Settings, release: Release, emit: Emit) -> None:
    name, version = release.app, release.version
    current = kube.get("deployments", name)
    running = objects.template_release(current) if current else None
    previous = releases.live(settings.data_dir, name)
    if running != version:
        started = bool(
            kube.list("replicasets", selector=objects.release_selector(name, version)).get("items")
        )
        serving = f"v{running}" if running else "no release"
        if started:
            releases.mark(
                settings.data_dir,
                name,
                version,
                "failed",
                f"interrupted mid-rollout; the cluster runs {serving}",
            )
        else:
            releases.mark(
                settings.data_dir,
                name,
                version,
                "superseded",
                f"never started (interrupted); the cluster runs {serving}",
            )
        return
    # The cluster runs this release: follow it for what is left of its health timeout.
    spec = spec_of(release)
    left = max(int(spec.health_timeout - (time.time() - release.created_at)), 5)
    try:
        _follow(kube, release, emit, timeout=left)
    except HomeportError as exc:
        error = _fail(kube, settings, release, previous, str(exc), True, emit)
        log.warning("reconcile: %s", error)
        return
    replaced: releases.Status = "rolled_back" if release.rollback_of else "superseded"
    releases.mark_live(settings.data_dir, name, version, replaced=replaced)


def keep_digests(settings: Settings, app: str) -> set[str]:
    """Digests the registry must keep for the app; deletes env Secrets outside retention.

    Kept: the last Settings.keep_releases releases, the live one, and whatever the running
    Deployment uses. A Secret is deleted only if no kept release and no running pod needs it.
    """
    every = releases.history(settings.data_dir, app)
    kept = every[: settings.keep_releases]
    current = releases.live(settings.data_dir, app)
    if current is not None and current not in kept:
        kept.append(current)
    digests = {r.digest for r in kept}
    needed = {secret_of(r) for r in kept}
    with Kube(settings) as kube:
        running = kube.get("deployments", app)
        if running is not None:
            image = objects.template_image(running) or ""
            if "@" in image:
                digests.add(image.rpartition("@")[2])
            needed |= objects.template_secrets(running)
        done: set[str] = set()  # a rollback release shares its target's Secret
        for release in every[settings.keep_releases :]:
            name = secret_of(release)
            if name in needed or name in done:
                continue
            done.add(name)
            if kube.delete("secrets", name):
                log.info(
                    "deleted Secret %s of %s v%d (outside retention)", name, app, release.version
                )
    return digests
