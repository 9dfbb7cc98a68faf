"""Removing an app from the cluster: every object homeport made for it.

An adapter like deploy.py: it deletes and reports what it deleted (`Removed`); the records,
the registry and the repository are the lifecycle's (homeport/lifecycle/removal.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from homeport.deployer import objects, volumes
from homeport.deployer.errors import ApiError
from homeport.deployer.kube import Kube
from homeport.deployer.processes import PART_OF
from homeport.settings import Settings

# Dependents (ReplicaSets, pods, a Job's pods) go with their owner, in the background: the
# default for batch/v1 Jobs would orphan their pods.
_BACKGROUND = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}


@dataclass(frozen=True)
class Removed:
    """What was deleted from the cluster (`kind/name`), and the claims left in place."""

    deleted: list[str] = field(default_factory=list)
    kept_claims: list[str] = field(default_factory=list)


def _delete(kube: Kube, kind: str, name: str) -> bool:
    try:
        kube.request("DELETE", kube.path(kind, name), body=_BACKGROUND)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def remove_app(
    settings: Settings, app: str, secrets: Iterable[str], *, delete_volumes: bool
) -> Removed:
    """Delete the app's Deployment, Service, Ingress, Jobs, CronJobs and the named Secrets
    (its config Secret always); its claims too when `delete_volumes`, else they are kept.

    Secrets are named, not listed: homeport may not list Secrets (that would read them all).
    """
    deleted: list[str] = []
    with Kube(settings) as kube:
        # The workloads first, so nothing starts again on what goes next.
        # The app's own objects (release-command Jobs) carry its name; processes and cron
        # entries (their Deployments, CronJobs and runs) say they are part of it.
        for kind in ("cronjobs", "jobs", "deployments"):
            for selector in (objects.selector(app), f"{PART_OF}={app}"):
                for item in kube.list(kind, selector=selector).get("items") or []:
                    name = str(item["metadata"]["name"])
                    if name != app and _delete(kube, kind, name):
                        deleted.append(f"{kind}/{name}")
        for kind in ("deployments", "ingresses", "services"):
            if _delete(kube, kind, app):
                deleted.append(f"{kind}/{app}")
        for name in sorted({objects.config_secret_name(app), *secrets}):
            if _delete(kube, "secrets", name):
                deleted.append(f"secrets/{name}")
        claims = volumes.kept_claims(kube, app)
        if not delete_volumes:
            return Removed(deleted, claims)
        for name in claims:
            # Protected by Kubernetes until the app's last pod has stopped, then removed.
            if _delete(kube, "persistentvolumeclaims", name):
                deleted.append(f"persistentvolumeclaims/{name}")
    return Removed(deleted, [])
