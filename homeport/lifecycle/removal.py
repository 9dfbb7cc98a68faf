"""Removing an app: its cluster objects, its images, its repository, logs and records.

Entered through destroy_app, which refuses while a job of the app is queued or
running and keeps new jobs out until the removal ends. The app's volume claims stay unless
asked for: they hold the app's data, and a fresh push of the same name mounts them again.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from homeport import apps, names, registry
from homeport.builder.build import remove_old_images
from homeport.deployer import objects, teardown
from homeport.errors import Conflict, NotFound
from homeport.git import sshkeys
from homeport.lifecycle.retention import pushed_images
from homeport.records import db, joblog, releases
from homeport.settings import Settings

log = logging.getLogger(__name__)


class AppBusy(Conflict):
    """The app has a job queued or running, or is being removed already."""


@dataclass(frozen=True)
class Destroyed:
    """What removing an app did."""

    app: str
    namespace: str
    cluster: list[str] = field(default_factory=list)
    """Kubernetes objects deleted, as kind/name."""
    images: int = 0
    """Image manifests deleted from the registry."""
    kept_claims: list[str] = field(default_factory=list)
    """Volume claims left in place (without --volumes)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "app": self.app,
            "deleted": self.cluster,
            "images_deleted": self.images,
            "kept_volumes": self.kept_claims,
            "notes": [
                f"kept volume claim {name} with its data; delete it with `kubectl -n"
                f" {self.namespace} delete pvc {name}`, or push {self.app} again to mount it"
                for name in self.kept_claims
            ],
        }


def begin(conn: sqlite3.Connection, app: str) -> None:
    """Mark the app as being removed; AppBusy if a job of it is queued or running."""
    row = conn.execute(
        "SELECT id, status FROM jobs WHERE app = ? AND status IN ('queued', 'running')"
        " ORDER BY created_at DESC LIMIT 1",
        (app,),
    ).fetchone()
    if row is not None:
        raise AppBusy(
            f"app {app!r} has a job {row['status']} ({row['id']}); wait for it to end"
            f" (`homeport jobs {app} {row['id']} -f`) and destroy it then"
        )
    if db.being_destroyed(conn, app):
        raise AppBusy(f"app {app!r} is being removed already; wait for that to finish")
    conn.execute(
        "INSERT OR REPLACE INTO destroying (app, started_at) VALUES (?, ?)", (app, db.now())
    )


def end(conn: sqlite3.Connection, app: str) -> None:
    conn.execute("DELETE FROM destroying WHERE app = ?", (app,))


def secret_names(settings: Settings, app: str) -> set[str]:
    """Every env Secret the app's releases ran with, as the records name them."""
    names = set()
    for release in releases.history(settings.data_dir, app):
        names.add(objects.release_secret_name(app, release.version))
        secret = release.config.get("secret")
        if secret:
            names.add(str(secret))
    return names


def forget(conn: sqlite3.Connection, app: str) -> None:
    """Delete the app's records: jobs, releases, their webhook deliveries, its binding."""
    conn.execute(
        "DELETE FROM deliveries WHERE job_id IN (SELECT id FROM jobs WHERE app = ?)", (app,)
    )
    conn.execute("DELETE FROM jobs WHERE app = ?", (app,))
    conn.execute("DELETE FROM releases WHERE app = ?", (app,))
    conn.execute("DELETE FROM app_sources WHERE app = ?", (app,))
    # What notifications, /metrics and rollback hooks kept of the app.
    for table in ("job_stages", "auto_rollbacks", "rollback_hooks", "hook_actions"):
        conn.execute(f"DELETE FROM {table} WHERE app = ?", (app,))  # noqa: S608 - fixed names


def _remove_tree(path: Path) -> None:
    """Move the directory aside at once, then delete it: nothing half-deleted is ever served."""
    if not path.exists():
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.destroy-", dir=path.parent))
    os.rename(path, aside / path.name)
    shutil.rmtree(aside)


def remove_files(settings: Settings, app: str) -> None:
    """The app's repository and job logs."""
    _remove_tree(apps.repo_path(settings.data_dir, app))
    _remove_tree(joblog.log_path(settings.data_dir, app, "x").parent)
    # A deploy key belongs to the app: the name pushed again later is a new app.
    if sshkeys.has_key(settings.data_dir, app):
        sshkeys.remove_key(settings.data_dir, app)
    log.info("removed the repository, job logs and deploy key of %s", app)


def destroy_app(settings: Settings, app: str, *, delete_volumes: bool) -> Destroyed:
    """Remove the app: cluster objects, the images homeport pushed, repository, logs, records.

    Refused (Conflict) while a job of the app is queued or running; no job can be created
    for it until the removal ends. Volume claims stay unless `delete_volumes`. Every step
    is idempotent, so a removal that failed halfway can simply be asked for again.
    """
    names.check_app_name(app)
    if not apps.exists(settings.data_dir, app):
        raise NotFound(f"app {app!r} does not exist; `homeport apps` lists the apps")
    with db.connect(settings.data_dir) as tx:
        begin(tx, app)
    try:
        removed = teardown.remove_app(
            settings, app, secret_names(settings, app), delete_volumes=delete_volumes
        )
        pushed = pushed_images(settings, app)
        own_tags: set[str] = set().union(*pushed.values()) if pushed else set()
        deleted = registry.prune(settings.registry, app, set(pushed), own_tags)
        remove_old_images(settings.registry, app, set(pushed), own_tags)
        with db.connect(settings.data_dir) as tx:
            forget(tx, app)
        remove_files(settings, app)
    finally:
        with db.connect(settings.data_dir) as tx:
            end(tx, app)
    log.info(
        "destroyed %s (%d cluster objects, %d images)", app, len(removed.deleted), len(deleted)
    )
    return Destroyed(app, settings.namespace, removed.deleted, len(deleted), removed.kept_claims)
