"""The cluster side of a release: apply it, follow it, restore the previous one.

An adapter: it reads release values to know what to apply and answers with an outcome
value (`Live`, `Failed`); writing records and telling the user how a release ended is the
lifecycle's (homeport/lifecycle/rollout.py). It emits progress lines while it works.

A release is immutable: an image digest, run settings and an env Secret `<app>-v<N>` that is
never changed (shared with the release before it when the env is the same). Rolling back to a
release re-applies exactly those, so the old ReplicaSet (and its pods, if they are still up) is
reused and config comes back with the code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeport.deployer import appconfig, cron, objects, processes, volumes
from homeport.deployer.errors import RolloutError
from homeport.deployer.kube import Kube
from homeport.deployer.rollout import follow
from homeport.errors import HomeportError
from homeport.release import Release
from homeport.settings import Settings
from homeport.spec import RunSpec

log = logging.getLogger(__name__)

Emit = Callable[[str], None]


def _quiet(line: str) -> None:
    log.info("%s", line.strip(" ->"))


@dataclass(frozen=True)
class Live:
    """The release is ready and serving."""


@dataclass(frozen=True)
class Failed:
    """The release did not become ready.

    `restored` says what happened to the previous release: "restored" (serving again),
    "untouched" (the new one was never applied), "none" (there is no previous release),
    "kept" (automatic rollback is off) or "failed" (restoring it failed too, see
    `restore_error`).
    """

    reason: str
    previous: int | None
    restored: str
    restore_error: str = ""


Outcome = Live | Failed


@dataclass
class Attempt:
    """What a rollout got to before it was stopped from outside (timeout, shutdown)."""

    applied: bool = False


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
    """The env Secret a release runs with (a rollback release reuses its target's, a release
    with the live release's env that release's)."""
    return str(
        release.config.get("secret") or objects.release_secret_name(release.app, release.version)
    )


def snapshot(spec: RunSpec, env: Mapping[str, str]) -> dict[str, Any]:
    """What the release record keeps: run settings and env names, never env values."""
    data = spec.to_dict()
    data["env"] = {}
    return {"spec": data, "env_keys": sorted(env)}


def merged_env(spec: RunSpec, config: Mapping[str, str]) -> dict[str, str]:
    """A release's env: homeport.toml's [env], then the app's config secrets over it."""
    return {**spec.env, **config}


def release_env(settings: Settings, app: str, spec: RunSpec) -> dict[str, str]:
    """The env a new release runs with, the app's config read now."""
    with Kube(settings) as kube:
        return merged_env(spec, appconfig.read(kube, app))


def same_env_secret(
    settings: Settings, previous: Release | None, env: Mapping[str, str]
) -> str | None:
    """The previous release's env Secret when it holds exactly `env`, for the new release
    to run with too.

    A pod that names a Secret the node has not read yet can wait a second or two for the
    node's permission to read it; the live release's Secret is one the node reads already.
    Content is compared with the cluster's copy, so a Secret changed or deleted behind
    homeport's back is never reused.
    """
    if previous is None:
        return None
    name = secret_of(previous)
    with Kube(settings) as kube:
        found = kube.get("secrets", name)
    wanted = objects.release_secret(previous.app, previous.version, env)["data"]
    if found is None or not found.get("immutable") or (found.get("data") or {}) != wanted:
        return None
    return name


def has_secret(settings: Settings, release: Release) -> bool:
    """Whether the env Secret the release runs with still exists."""
    with Kube(settings) as kube:
        return kube.get("secrets", secret_of(release)) is not None


def _claims(kube: Kube, release: Release, settings: Settings, emit: Emit) -> bool:
    """The release's volume claims, made before any pod that mounts them; whether web must
    be replaced all at once (a ReadWriteOncePod claim)."""
    return volumes.ensure(settings, kube, release.app, spec_of(release), emit)


def _apply(kube: Kube, release: Release, recreate: bool) -> None:
    spec = spec_of(release)
    kube.apply(objects.service(release.app, spec))
    ingress = objects.ingress(release.app, spec)
    if ingress is not None:
        kube.apply(ingress)
    else:
        # A release without a host must not leave an earlier release's route behind.
        kube.delete("ingresses", release.app)
    kube.apply(
        objects.deployment(
            release.app,
            release.version,
            release.image,
            spec,
            secret_of(release),
            recreate=recreate,
        )
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


def _apply_processes(kube: Kube, release: Release) -> None:
    spec = spec_of(release)
    processes.apply(kube, release.app, release.version, release.image, spec, secret_of(release))


def _follow_processes(kube: Kube, release: Release, emit: Emit, timeout: int | None = None) -> None:
    spec = spec_of(release)
    processes.follow(kube, release.app, release.version, spec, emit, timeout or spec.health_timeout)


def _finish(kube: Kube, release: Release, emit: Emit) -> None:
    """The release is live: its cron runs from it; processes and cron it lacks go."""
    spec = spec_of(release)
    cron.apply(kube, release.app, release.version, release.image, spec, secret_of(release))
    processes.prune(kube, release.app, spec.processes, emit)
    cron.prune(kube, release.app, spec.cron, emit)


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


def create_secret(settings: Settings, release: Release, env: Mapping[str, str]) -> None:
    """Create the release's env Secret ahead of its rollout, for its release command."""
    with Kube(settings) as kube:
        _create_secret(kube, release, env)


def _restore(
    kube: Kube,
    settings: Settings,
    release: Release,
    previous: Release | None,
    reason: str,
    applied: bool,
    emit: Emit,
) -> Failed:
    """Put the previous release back (when that is wanted) and say what happened."""
    before = previous.version if previous else None
    if previous is None:
        return Failed(reason, None, "none")
    if not applied:
        return Failed(reason, before, "untouched")
    if not settings.rollback_on_failure:
        return Failed(reason, before, "kept")
    emit(f"-----> {release.app} v{release.version} failed: {reason}")
    emit(f"-----> Rolling back to v{previous.version}")
    try:
        recreate = _claims(kube, previous, settings, emit)
        _apply_processes(kube, previous)
        _apply(kube, previous, recreate)
        _follow(kube, previous, emit)
        _follow_processes(kube, previous, emit)
        _finish(kube, previous, emit)
    except HomeportError as exc:
        return Failed(reason, before, "failed", str(exc))
    emit(f"-----> {release.app} v{previous.version} is live again")
    return Failed(reason, before, "restored")


def roll_out(
    settings: Settings,
    release: Release,
    previous: Release | None,
    *,
    env: Mapping[str, str] | None,
    attempt: Attempt,
    emit: Emit = _quiet,
) -> Outcome:
    """Apply the release and follow it until ready; restore `previous` if it is not.

    `env` creates the release's Secret (None: it exists already, as for a rollback).
    `attempt.applied` tells a caller stopped from outside whether the cluster changed.
    """
    with Kube(settings) as kube:
        try:
            if env is not None:
                _create_secret(kube, release, env)
            # Processes first: web keeps serving the previous release until every process of
            # the new one has run without restarting, so a crashing worker costs web nothing.
            recreate = _claims(kube, release, settings, emit)
            attempt.applied = bool(spec_of(release).processes)
            _apply_processes(kube, release)
            _follow_processes(kube, release, emit)
            _apply(kube, release, recreate)
            attempt.applied = True
            _follow(kube, release, emit)
            _finish(kube, release, emit)
        except HomeportError as exc:
            return _restore(kube, settings, release, previous, str(exc), attempt.applied, emit)
    return Live()


@dataclass(frozen=True)
class Observed:
    """What the cluster runs of an app, for a release whose rollout nobody followed to its end."""

    running: int | None
    started: bool

    @property
    def serving(self) -> str:
        return f"v{self.running}" if self.running else "no release"


def observe(settings: Settings, release: Release) -> Observed:
    """Which release the app's Deployment runs, and whether `release` ever got pods."""
    with Kube(settings) as kube:
        current = kube.get("deployments", release.app)
        running = objects.template_release(current) if current else None
        started = bool(
            kube.list(
                "replicasets", selector=objects.release_selector(release.app, release.version)
            ).get("items")
        )
        # Processes roll out before web: an interrupted release may have got only those.
        started = started or any(
            objects.template_release(part) == release.version
            for part in processes.owned(kube, release.app)
        )
    return Observed(running, started)


def realign(settings: Settings, live: Release, emit: Emit) -> None:
    """Make processes and cron match the live release again (after an interrupted rollout)."""
    with Kube(settings) as kube:
        _apply_processes(kube, live)
        _follow_processes(kube, live, emit)
        _finish(kube, live, emit)


def resume(
    settings: Settings, release: Release, previous: Release | None, timeout: int, emit: Emit
) -> Outcome:
    """Follow a release the cluster already runs for what is left of its timeout."""
    with Kube(settings) as kube:
        try:
            _follow_processes(kube, release, emit, timeout)
            _follow(kube, release, emit, timeout=timeout)
            _finish(kube, release, emit)
        except HomeportError as exc:
            return _restore(kube, settings, release, previous, str(exc), True, emit)
    return Live()


def keep_digests(settings: Settings, kept: list[Release], dropped: list[Release]) -> set[str]:
    """Digests the registry must keep for the app; deletes env Secrets of `dropped` releases.

    Kept: the digests of `kept` and whatever the running Deployment uses. A Secret is deleted
    only if no kept release and no running pod needs it.
    """
    if not kept and not dropped:
        return set()
    app = (kept or dropped)[0].app
    digests = {r.digest for r in kept}
    needed = {secret_of(r) for r in kept}
    with Kube(settings) as kube:
        running = kube.get("deployments", app)
        if running is not None:
            image = objects.template_image(running) or ""
            if "@" in image:
                digests.add(image.rpartition("@")[2])
            needed |= objects.template_secrets(running)
        # Processes and cron runs use images and Secrets too (after a failed restore, maybe
        # another release's than web).
        parts = [processes.template_parts(p) for p in processes.owned(kube, app)]
        parts += [cron.template_parts(c) for c in cron.owned(kube, app)]
        for images, names in parts:
            digests |= {image.rpartition("@")[2] for image in images if "@" in image}
            needed |= names
        done: set[str] = set()  # a rollback release shares its target's Secret
        for release in dropped:
            name = secret_of(release)
            if name in needed or name in done:
                continue
            done.add(name)
            if kube.delete("secrets", name):
                log.info(
                    "deleted Secret %s of %s v%d (outside retention)", name, app, release.version
                )
    return digests
