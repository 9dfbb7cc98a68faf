"""`homeport ps`: each process of an app, its pods, their status, restarts, release and age."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from homeport.deployer import objects
from homeport.deployer.kube import Kube
from homeport.deployer.workloads import processes
from homeport.settings import Settings


def _seconds_since(stamp: str | None, now: float) -> int | None:
    if not stamp:
        return None
    try:
        made = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0, int(now - made.timestamp()))


def pod_status(pod: Mapping[str, Any]) -> str:
    """One word, as `kubectl get pods` shows it: Running, Terminating, CrashLoopBackOff, ..."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status", {})
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            return str(state["waiting"]["reason"])
        if state.get("terminated", {}).get("reason"):
            return str(state["terminated"]["reason"])
    return str(status.get("phase") or "Pending")


def describe_pod(pod: Mapping[str, Any], now: float) -> dict[str, Any]:
    containers = pod.get("status", {}).get("containerStatuses") or []
    version = (pod.get("metadata", {}).get("labels") or {}).get(objects.RELEASE_KEY)
    return {
        "name": pod["metadata"]["name"],
        "status": pod_status(pod),
        "ready": bool(containers) and all(c.get("ready") for c in containers),
        "restarts": sum(int(c.get("restartCount") or 0) for c in containers),
        "release": int(version) if version and str(version).isdigit() else None,
        "age": _seconds_since(pod.get("metadata", {}).get("creationTimestamp"), now),
    }


def ps(settings: Settings, app: str) -> dict[str, Any]:
    """The app's processes and pods as the API answers them."""
    now = time.time()
    with Kube(settings) as kube:
        found = processes(kube, app)
    return {
        "app": app,
        "processes": [
            {
                "name": p.name,
                "deployment": p.deployment["metadata"]["name"],
                "replicas": p.deployment.get("spec", {}).get("replicas"),
                "ready": p.deployment.get("status", {}).get("readyReplicas") or 0,
                "release": objects.template_release(p.deployment),
                "pods": [describe_pod(pod, now) for pod in p.pods],
            }
            for p in found
        ],
    }
