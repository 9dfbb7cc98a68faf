"""Retention: which releases keep their images and Secrets, and cleaning up the rest."""

from __future__ import annotations

import logging

from homeport import registry
from homeport.builder.build import image_tag, remove_old_images
from homeport.deployer import deploy, release_command
from homeport.errors import HomeportError
from homeport.lifecycle.common import Emit
from homeport.records import jobs, releases
from homeport.release import Release
from homeport.settings import Settings

log = logging.getLogger(__name__)


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


def pushed_images(
    settings: Settings, app: str, every: list[Release] | None = None
) -> dict[str, set[str]]:
    """Digests homeport pushed for the app, as its records say, with the tags it gave them.

    `every`: the app's releases, when the caller has read them already.
    """
    if every is None:
        every = releases.history(settings.data_dir, app)
    records = [(r.commit, r.image) for r in every]
    records += jobs.pushed_images(settings.data_dir, app)
    pushed: dict[str, set[str]] = {}
    for commit, image in records:
        if "@" in image:
            pushed.setdefault(image.rpartition("@")[2], set()).add(image_tag(commit))
    return pushed


def _drop_release_jobs(settings: Settings, app: str, dropped: list[Release]) -> None:
    """Finished release-command Jobs go with their release's retention."""
    try:
        release_command.drop_jobs(settings, app, {r.version for r in dropped})
    except HomeportError as exc:
        log.warning("release command Jobs of %s were not cleaned up: %s", app, exc)


def keep_releases(settings: Settings, app: str, emit: Emit) -> None:
    """Drop images and Secrets of releases outside retention; never fails the deploy.

    Retention counts distinct images, so rollbacks to one image never evict newer ones.
    Only images homeport's records say it pushed are deleted: other tools may push to the
    same registry repository, and their images are not homeport's to remove.
    """
    every = releases.history(settings.data_dir, app)
    live = next((r for r in every if r.status == "live"), None)
    kept, dropped = retained(every, live, settings.keep_releases)
    pushed = pushed_images(settings, app, every)
    if dropped:
        _drop_release_jobs(settings, app, dropped)
    if not dropped and set(pushed) <= {r.digest for r in kept}:
        # Nothing falls outside retention: spare the cluster, registry and engine the calls.
        return
    try:
        keep = deploy.keep_digests(settings, kept, dropped)
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
