"""The app's processes besides web (`[processes.NAME]`): one Deployment `<app>-<name>` each.

A process runs the release's image and env Secret with its own command and replica count, and
has no Service. Its pods are labelled `app.kubernetes.io/part-of=<app>` and
`homeport.dev/process=<name>`, never `app.kubernetes.io/name=<app>`, so the web Service and
Deployment, which select on that label, never take them.

A process has no readiness probe; it counts as started when each of its new pods has run for
STABLE_SECONDS without restarting (the Deployment's minReadySeconds, which Kubernetes resets
whenever the container restarts). A release is live only when web is ready and every process
has started; a crash loop fails it at once with the reason naming the process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from homeport.deployer import objects
from homeport.deployer.errors import RolloutError
from homeport.deployer.kube import Kube
from homeport.deployer.rollout import follow as follow_rollout
from homeport.spec import RunSpec

log = logging.getLogger(__name__)

PART_OF = "app.kubernetes.io/part-of"
PROCESS_KEY = "homeport.dev/process"
# Seconds each new pod of a process must run without restarting before the release is live:
# long enough to catch a process that exits at start (the kubelet restarts it within a
# second or two), short enough not to slow every deploy.
STABLE_SECONDS = 5
# A process's rollout gets at least this long, whatever [healthcheck] timeout says.
MIN_TIMEOUT = 4 * STABLE_SECONDS

Emit = Callable[[str], None]


def deployment_name(app: str, process: str) -> str:
    return f"{app}-{process}"


def labels(app: str, process: str) -> dict[str, str]:
    """Labels of a process's Deployment and pods: part of the app, named by the process."""
    return {PART_OF: app, objects.MANAGED_LABEL: objects.MANAGER, PROCESS_KEY: process}


def selector(app: str) -> str:
    """Label selector of every process Deployment (and pod) of the app."""
    return f"{PART_OF}={app},{PROCESS_KEY}"


def pod_selector(app: str, process: str, version: int) -> str:
    """Label selector of one release's pods of a process."""
    return f"{PART_OF}={app},{PROCESS_KEY}={process},{objects.RELEASE_KEY}={version}"


def process_volumes(
    app: str, spec: RunSpec, process: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pod volumes and container mounts of the process's `volumes` (names of [volumes])."""
    return objects.volume_parts(app, spec, spec.processes[process].volumes)


def deployment(
    app: str, version: int, image: str, spec: RunSpec, process: str, secret_name: str
) -> dict[str, Any]:
    """The Deployment running `process` of one release: its command in the release's image."""
    if "@sha256:" not in image:
        raise ValueError(f"image {image!r} is not pinned by digest (REPO@sha256:...)")
    part = spec.processes[process]
    volumes, mounts = process_volumes(app, spec, process)
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        # `args`, as `docker run IMAGE COMMAND...`: the image's ENTRYPOINT, if any, stays.
        "args": list(part.command),
        "envFrom": [{"secretRef": {"name": secret_name}}],
    }
    pod = objects.pod_spec(container, objects.resources(part.memory, part.cpu), volumes, mounts)
    own = labels(app, process)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment_name(app, process), "labels": own},
        "spec": {
            "replicas": part.replicas,
            "selector": {"matchLabels": {PART_OF: app, PROCESS_KEY: process}},
            "strategy": {
                "type": "RollingUpdate",
                # As for web: the old pods run until new ones have started.
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "minReadySeconds": STABLE_SECONDS,
            "revisionHistoryLimit": objects.REVISION_HISTORY,
            "progressDeadlineSeconds": spec.health_timeout
            + STABLE_SECONDS
            + objects.DEADLINE_MARGIN,
            "template": {
                "metadata": {
                    "labels": {**own, objects.RELEASE_KEY: str(version)},
                    "annotations": {objects.RELEASE_KEY: str(version)},
                },
                "spec": pod,
            },
        },
    }


def check_owner(kube: Kube, kind: str, name: str, want: Mapping[str, str]) -> None:
    """Refuse to take over an object of the same name that another app or part owns."""
    existing = kube.get(kind, name)
    if existing is None:
        return
    have = existing.get("metadata", {}).get("labels") or {}
    if any(have.get(k) != v for k, v in want.items()):
        owner = have.get(PART_OF) or have.get(objects.NAME_LABEL) or "something else"
        raise RolloutError(
            f"the {kind[:-1]} {name} exists and belongs to {owner}, not to"
            f" {'/'.join(want.values())}; rename the entry in homeport.toml"
        )


def apply(kube: Kube, app: str, version: int, image: str, spec: RunSpec, secret: str) -> None:
    """Create or update the Deployment of every process of the release."""
    for process in spec.processes:
        body = deployment(app, version, image, spec, process, secret)
        check_owner(
            kube,
            "deployments",
            body["metadata"]["name"],
            {PART_OF: app, PROCESS_KEY: process},
        )
        kube.apply(body)


def follow(kube: Kube, app: str, version: int, spec: RunSpec, emit: Emit, timeout: int) -> None:
    """Wait until every process of the release has started; RolloutError names the process."""
    for process, part in spec.processes.items():

        def say(line: str, process: str = process) -> None:
            emit(line.replace("       ", f"       {process}: ", 1))

        try:
            follow_rollout(
                kube,
                app=app,
                version=version,
                timeout=max(timeout, MIN_TIMEOUT),
                health_path=None,
                port=0,
                emit=say,
                deployment=deployment_name(app, process),
                pods_selector=pod_selector(app, process, version),
            )
        except RolloutError as exc:
            raise RolloutError(f"{process}: {exc}") from exc
        if part.replicas:
            emit(f"       {process}: running for {STABLE_SECONDS}s without a restart")


def owned(kube: Kube, app: str, *, cached: bool = False) -> list[dict[str, Any]]:
    """The app's process Deployments in the cluster."""
    return list(kube.list("deployments", selector=selector(app), cached=cached).get("items") or [])


def prune(kube: Kube, app: str, keep: Iterable[str], emit: Emit) -> None:
    """Delete the app's process Deployments whose process is not in `keep`."""
    wanted = set(keep)
    # A moment-old list is enough to find what is no longer wanted; it costs no wait.
    for item in owned(kube, app, cached=True):
        meta = item.get("metadata", {})
        process = (meta.get("labels") or {}).get(PROCESS_KEY, "")
        if process not in wanted and kube.delete("deployments", meta["name"], cascade=True):
            log.info("deleted Deployment %s (process %s left homeport.toml)", meta["name"], process)
            emit(f"       removed process {process} (not in this release)")


def template_parts(item: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Images and env Secrets a process Deployment's pods use."""
    image = objects.template_image(item)
    return ({image} if image else set()), objects.template_secrets(item)
