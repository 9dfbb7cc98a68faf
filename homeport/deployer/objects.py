"""Pure functions from a release to the Kubernetes objects that run it.

Everything is a plain dict as the API server takes it (server-side apply bodies), so the
functions are easy to test and the adapter stays the only place that talks to the cluster.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from typing import Any

from homeport.spec import RunSpec, Volume

NAME_LABEL = "app.kubernetes.io/name"
MANAGED_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "homeport"
# On the pod template (label and annotation): the release the pods belong to. The label selects
# a release's pods while the Deployment's selector stays the app label alone.
RELEASE_KEY = "homeport.dev/release"
# Readiness probe cadence: fast enough to notice a ready pod within ~1 s, cheap for tiny apps.
PROBE_PERIOD = 1
PROBE_TIMEOUT = 2
# Kubernetes marks a rollout stalled after this many seconds beyond our own health timeout;
# homeport decides first, the condition is the backstop for a deploy nobody follows.
DEADLINE_MARGIN = 60
# On a PersistentVolumeClaim: the name of the app's volume it holds.
VOLUME_KEY = "homeport.dev/volume"
# Old ReplicaSets kept by Kubernetes; homeport's own release record is the history.
REVISION_HISTORY = 3


def labels(app: str) -> dict[str, str]:
    """Labels every object of the app carries."""
    return {NAME_LABEL: app, MANAGED_LABEL: MANAGER}


def selector(app: str) -> str:
    """Label selector of the app's objects."""
    return f"{NAME_LABEL}={app}"


def release_selector(app: str, version: int) -> str:
    """Label selector of one release's pods."""
    return f"{NAME_LABEL}={app},{RELEASE_KEY}={version}"


def release_secret_name(app: str, version: int) -> str:
    return f"{app}-v{version}"


def config_secret_name(app: str) -> str:
    return f"{app}-config"


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def release_secret(app: str, version: int, env: Mapping[str, str]) -> dict[str, Any]:
    """The release's env as an immutable Secret: a rollback finds exactly what v<N> ran with."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": release_secret_name(app, version),
            "labels": {**labels(app), RELEASE_KEY: str(version)},
        },
        "type": "Opaque",
        "immutable": True,
        "data": {key: _b64(value) for key, value in sorted(env.items())},
    }


def secret_values(secret: Mapping[str, Any]) -> dict[str, str]:
    """Decoded data of a Secret as the API returns it."""
    data = secret.get("data") or {}
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def claim_name(app: str, volume: str) -> str:
    """The PersistentVolumeClaim of one of the app's volumes."""
    return f"{app}-{volume}"


def volume_claim(
    app: str, volume: Volume, storage_class: str | None, access_mode: str
) -> dict[str, Any]:
    """A claim for one of the app's volumes; the cluster's default class when none is named."""
    spec: dict[str, Any] = {
        "accessModes": [access_mode],
        "resources": {"requests": {"storage": volume.size}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": claim_name(app, volume.name),
            "labels": {**labels(app), VOLUME_KEY: volume.name},
        },
        "spec": spec,
    }


def volume_parts(
    app: str, spec: RunSpec, names: Collection[str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The app's volumes as a pod needs them: (pod `volumes`, container `volumeMounts`).

    Every pod of the app that runs its code mounts the same claims at the same paths; with
    `names`, only those volumes (a process's `volumes`).
    """
    volumes = []
    mounts = []
    for volume in spec.volumes:
        if names is not None and volume.name not in names:
            continue
        name = f"vol-{volume.name}"
        volumes.append(
            {"name": name, "persistentVolumeClaim": {"claimName": claim_name(app, volume.name)}}
        )
        mounts.append({"name": name, "mountPath": volume.path})
    return volumes, mounts


def _probe(spec: RunSpec) -> dict[str, Any]:
    check: dict[str, Any]
    if spec.health_path:
        check = {"httpGet": {"path": spec.health_path, "port": spec.port}}
    else:
        check = {"tcpSocket": {"port": spec.port}}
    return {
        **check,
        "periodSeconds": PROBE_PERIOD,
        "timeoutSeconds": PROBE_TIMEOUT,
        "successThreshold": 1,
        "failureThreshold": 3,
    }


def _resources(spec: RunSpec) -> dict[str, Any]:
    return resources(spec.memory, spec.cpu)


def resources(memory: str | None, cpu: str | None) -> dict[str, Any]:
    """A container's `resources`: requests equal to limits, or {} when neither is set."""
    amounts = {k: v for k, v in (("memory", memory), ("cpu", cpu)) if v}
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def pod_spec(
    container: dict[str, Any],
    container_resources: dict[str, Any],
    pod_volumes: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
) -> dict[str, Any]:
    """The pod of a Deployment running the app's code in `container` (completed here)."""
    if container_resources:
        container["resources"] = container_resources
    if mounts:
        container["volumeMounts"] = mounts
    pod: dict[str, Any] = {
        "containers": [container],
        # Apps get no API credentials and no service-link env noise.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
    }
    if pod_volumes:
        pod["volumes"] = pod_volumes
    return pod


def deployment(
    app: str,
    version: int,
    image: str,
    spec: RunSpec,
    secret_name: str,
    *,
    recreate: bool = False,
) -> dict[str, Any]:
    """The app's Deployment running one release: image by digest, env from the release Secret.

    `recreate`: old pods stop before new ones start, for volumes only one pod may mount.
    """
    if "@sha256:" not in image:
        raise ValueError(f"image {image!r} is not pinned by digest (REPO@sha256:...)")
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "envFrom": [{"secretRef": {"name": secret_name}}],
        "readinessProbe": _probe(spec),
    }
    pod = pod_spec(container, _resources(spec), *volume_parts(app, spec))
    # Keep every old pod until a new one is available: a failed release costs nothing.
    strategy: dict[str, Any] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    if recreate:
        strategy = {"type": "Recreate"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "labels": labels(app)},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": {NAME_LABEL: app}},
            "strategy": strategy,
            "revisionHistoryLimit": REVISION_HISTORY,
            "progressDeadlineSeconds": spec.health_timeout + DEADLINE_MARGIN,
            "template": {
                "metadata": {
                    "labels": {**labels(app), RELEASE_KEY: str(version)},
                    "annotations": {RELEASE_KEY: str(version)},
                },
                "spec": pod,
            },
        },
    }


def service(app: str, spec: RunSpec) -> dict[str, Any]:
    """Service `<app>` port 80 (`http`) to the container port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "labels": labels(app)},
        "spec": {
            "selector": {NAME_LABEL: app},
            "ports": [{"name": "http", "port": 80, "targetPort": spec.port, "protocol": "TCP"}],
        },
    }


def ingress(app: str, spec: RunSpec) -> dict[str, Any] | None:
    """Ingress for the app's host, or None when it has none."""
    if not spec.ingress_host:
        return None
    backend = {"service": {"name": app, "port": {"name": "http"}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": app, "labels": labels(app)},
        "spec": {
            "rules": [
                {
                    "host": spec.ingress_host,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ]
        },
    }


def template_release(deployment_obj: Mapping[str, Any]) -> int | None:
    """The release version a Deployment's pod template runs, if homeport set it."""
    template = deployment_obj.get("spec", {}).get("template", {})
    value = (template.get("metadata", {}).get("annotations") or {}).get(RELEASE_KEY)
    return int(value) if value and str(value).isascii() and str(value).isdigit() else None


def template_image(deployment_obj: Mapping[str, Any]) -> str | None:
    containers = deployment_obj.get("spec", {}).get("template", {}).get("spec", {})
    for container in containers.get("containers") or []:
        return str(container.get("image"))
    return None


def template_secrets(deployment_obj: Mapping[str, Any]) -> set[str]:
    """Names of the Secrets the pod template takes env from."""
    pod = deployment_obj.get("spec", {}).get("template", {}).get("spec", {})
    names: set[str] = set()
    for container in pod.get("containers") or []:
        for source in container.get("envFrom") or []:
            ref = source.get("secretRef") or {}
            if ref.get("name"):
                names.add(str(ref["name"]))
    return names
