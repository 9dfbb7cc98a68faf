"""The app's scheduled commands (`[cron.NAME]`): one CronJob `<app>-<name>` each.

A CronJob runs the live release's image and env Secret: it is applied once a release is live
(rollbacks included) and deleted when its entry leaves homeport.toml. Runs never overlap
(concurrencyPolicy Forbid), a failed run is not retried (the next one is due anyway), and
Kubernetes keeps the last HISTORY runs of each outcome. A run started by hand is a Job made
from the CronJob's own template and owned by it, so it counts in that history and in Forbid.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from homeport.deployer import objects
from homeport.deployer.kube import Kube
from homeport.deployer.processes import PART_OF, check_owner
from homeport.errors import Conflict
from homeport.settings import Settings
from homeport.spec import RunSpec

CRON_KEY = "homeport.dev/cron"
# Finished runs Kubernetes keeps per CronJob and outcome (their pods keep the logs).
HISTORY = 3
# A run that could not start within this many seconds of its time (cluster down) is skipped
# rather than started late; Kubernetes also stops counting missed runs past it.
STARTING_DEADLINE = 300
# What `kubectl create job --from=cronjob/...` marks a run started by hand with.
_INSTANTIATE = "cronjob.kubernetes.io/instantiate"
_RUN_SUFFIX = "abcdefghijklmnopqrstuvwxyz0123456789"

Emit = Callable[[str], None]


def cronjob_name(app: str, name: str) -> str:
    return f"{app}-{name}"


def labels(app: str, name: str) -> dict[str, str]:
    return {PART_OF: app, objects.MANAGED_LABEL: objects.MANAGER, CRON_KEY: name}


def selector(app: str) -> str:
    """Label selector of the app's CronJobs and of the Jobs and pods of their runs."""
    return f"{PART_OF}={app},{CRON_KEY}"


def cronjob(
    app: str, version: int, image: str, spec: RunSpec, name: str, secret_name: str
) -> dict[str, Any]:
    """The CronJob of one cron entry, running the release's image and env."""
    if "@sha256:" not in image:
        raise ValueError(f"image {image!r} is not pinned by digest (REPO@sha256:...)")
    entry = spec.cron[name]
    own = labels(app, name)
    job: dict[str, Any] = {"backoffLimit": 0}
    if entry.timeout:
        job["activeDeadlineSeconds"] = entry.timeout
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": list(entry.command),
        "envFrom": [{"secretRef": {"name": secret_name}}],
    }
    # The entry's volumes, mounted where the app's pods mount them.
    pod_volumes, mounts = objects.volume_parts(app, spec, entry.volumes)
    if mounts:
        container["volumeMounts"] = mounts
    job["template"] = {
        "metadata": {
            "labels": {**own, objects.RELEASE_KEY: str(version)},
            "annotations": {objects.RELEASE_KEY: str(version)},
        },
        "spec": {
            **({"volumes": pod_volumes} if pod_volumes else {}),
            "restartPolicy": "Never",
            "containers": [container],
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(app, name),
            "labels": own,
            "annotations": {objects.RELEASE_KEY: str(version)},
        },
        "spec": {
            "schedule": entry.schedule,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE,
            "successfulJobsHistoryLimit": HISTORY,
            "failedJobsHistoryLimit": HISTORY,
            "jobTemplate": {"metadata": {"labels": own}, "spec": job},
        },
    }


def apply(kube: Kube, app: str, version: int, image: str, spec: RunSpec, secret: str) -> None:
    """Create or update the CronJob of every cron entry of the release."""
    for name in spec.cron:
        body = cronjob(app, version, image, spec, name, secret)
        check_owner(kube, "cronjobs", body["metadata"]["name"], {PART_OF: app, CRON_KEY: name})
        kube.apply(body)


def owned(kube: Kube, app: str, *, cached: bool = False) -> list[dict[str, Any]]:
    """The app's CronJobs in the cluster."""
    return list(kube.list("cronjobs", selector=selector(app), cached=cached).get("items") or [])


def prune(kube: Kube, app: str, keep: Iterable[str], emit: Emit) -> None:
    """Delete the app's CronJobs (and with them their runs) not in `keep`."""
    wanted = set(keep)
    # A moment-old list is enough to find what is no longer wanted; it costs no wait.
    for item in owned(kube, app, cached=True):
        meta = item.get("metadata", {})
        name = (meta.get("labels") or {}).get(CRON_KEY, "")
        if name not in wanted and kube.delete("cronjobs", meta["name"], cascade=True):
            emit(f"       removed cron {name} (not in this release)")


def _when(job: Mapping[str, Any]) -> str:
    return str(job.get("status", {}).get("startTime") or job["metadata"].get("creationTimestamp"))


def outcome(job: Mapping[str, Any]) -> dict[str, Any]:
    """One run as the API shows it: its Job, status, times and why it failed."""
    status = job.get("status") or {}
    state, reason, ended = "running" if status.get("active") else "starting", "", None
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            state, ended = (
                "succeeded",
                status.get("completionTime") or cond.get("lastTransitionTime"),
            )
        elif cond.get("type") == "Failed":
            state, ended = "failed", cond.get("lastTransitionTime")
            reason = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
    return {
        "job": job["metadata"]["name"],
        "status": state,
        "reason": reason,
        "started_at": _when(job),
        "ended_at": ended,
        "manual": (job["metadata"].get("annotations") or {}).get(_INSTANTIATE) == "manual",
    }


def last_runs(jobs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The newest run of each cron entry, by entry name."""
    newest: dict[str, Mapping[str, Any]] = {}
    for job in jobs:
        name = (job.get("metadata", {}).get("labels") or {}).get(CRON_KEY)
        if name and (name not in newest or _when(job) > _when(newest[name])):
            newest[name] = job
    return {name: outcome(job) for name, job in newest.items()}


def runs(settings: Settings, app: str) -> dict[str, dict[str, Any]]:
    """The newest run of each of the app's cron entries in the cluster."""
    with Kube(settings) as kube:
        return last_runs(kube.list("jobs", selector=selector(app)).get("items") or [])


def run_now(settings: Settings, app: str, name: str) -> str:
    """Start a run of the CronJob now, from its template; returns the Job's name."""
    cj_name = cronjob_name(app, name)
    with Kube(settings) as kube:
        found = kube.get("cronjobs", cj_name)
        if found is None:
            raise Conflict(
                f"the CronJob {cj_name} of cron {name} is missing from the cluster; deploy"
                f" {app} again (push or `homeport rollback`) to recreate it"
            )
        listed = kube.list("jobs", selector=f"{PART_OF}={app},{CRON_KEY}={name}")
        for job in listed.get("items") or []:
            if outcome(job)["status"] in ("running", "starting"):
                raise Conflict(
                    f"cron {name} of {app} is running already (job {job['metadata']['name']});"
                    " runs never overlap, start one when it has ended"
                )
        template = found["spec"]["jobTemplate"]
        suffix = "".join(secrets.choice(_RUN_SUFFIX) for _ in range(5))
        body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{cj_name}-run-{suffix}",
                "labels": dict(template.get("metadata", {}).get("labels") or labels(app, name)),
                "annotations": {_INSTANTIATE: "manual"},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "name": cj_name,
                        "uid": found["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": copy.deepcopy(template["spec"]),
        }
        created = kube.create(body)
        if created is None:
            raise Conflict(f"a run named {body['metadata']['name']} exists; try again")
        return str(body["metadata"]["name"])


def template_parts(item: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Images and env Secrets a CronJob's runs use."""
    pod = item.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {})
    holder = {"spec": {"template": pod}}
    image = objects.template_image(holder)
    return ({image} if image else set()), objects.template_secrets(holder)
