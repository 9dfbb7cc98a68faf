"""What runs of an app: its processes (every Deployment labelled with the app) and their pods.

A Deployment is the app's when it carries `app.kubernetes.io/name=<app>` (web) or
`app.kubernetes.io/part-of=<app>` (its other processes). The web process is the Deployment
named like the app; another is named by its `homeport.dev/process` label, else `<app>-<name>`
is process `<name>`. A pod belongs to the Deployment whose ReplicaSet owns it (the ReplicaSet
is `<deployment>-<pod-template-hash>`), so selectors that overlap cannot mix pods up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from homeport.deployer import objects
from homeport.deployer.kube import Kube
from homeport.errors import NotFound

HASH_LABEL = "pod-template-hash"
PART_OF = "app.kubernetes.io/part-of"
PROCESS_KEY = "homeport.dev/process"


@dataclass
class Process:
    """One Deployment of the app and its pods."""

    name: str
    deployment: dict[str, Any]
    pods: list[dict[str, Any]] = field(default_factory=list)


def process_name(app: str, deployment_name: str) -> str:
    if deployment_name == app:
        return "web"
    prefix = app + "-"
    return deployment_name[len(prefix) :] if deployment_name.startswith(prefix) else deployment_name


def owner(pod: Mapping[str, Any]) -> str | None:
    """Name of the Deployment whose ReplicaSet owns the pod, if one does."""
    meta = pod.get("metadata", {})
    pod_hash = (meta.get("labels") or {}).get(HASH_LABEL)
    for ref in meta.get("ownerReferences") or []:
        name = str(ref.get("name") or "")
        if ref.get("kind") == "ReplicaSet" and pod_hash and name.endswith("-" + pod_hash):
            return name[: -len(pod_hash) - 1]
    return None


def _selector(deployment: Mapping[str, Any]) -> str:
    labels = deployment.get("spec", {}).get("selector", {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def processes(kube: Kube, app: str) -> list[Process]:
    """The app's processes, web first, each with the pods its ReplicaSets own."""
    found: dict[str, Process] = {}
    for chosen in (objects.selector(app), f"{PART_OF}={app}"):
        for item in kube.list("deployments", selector=chosen).get("items") or []:
            name = item["metadata"]["name"]
            named = (item["metadata"].get("labels") or {}).get(PROCESS_KEY)
            found[name] = Process(str(named or process_name(app, name)), item)
    by_selector: dict[str, list[dict[str, Any]]] = {}
    for deployment_name, process in found.items():
        chosen = _selector(process.deployment)
        if not chosen:
            continue
        if chosen not in by_selector:
            by_selector[chosen] = list(kube.list("pods", selector=chosen).get("items") or [])
        process.pods = [p for p in by_selector[chosen] if owner(p) == deployment_name]
        process.pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
    return sorted(found.values(), key=lambda p: (p.name != "web", p.name))


def pick(app: str, found: list[Process], name: str | None) -> list[Process]:
    """All processes, or the one named; NotFound naming those that exist."""
    if name is None:
        return found
    chosen = [p for p in found if p.name == name]
    if not chosen:
        known = ", ".join(p.name for p in found) or "none (nothing is deployed yet)"
        raise NotFound(f"app '{app}' has no process {name!r}; its processes are: {known}")
    return chosen
