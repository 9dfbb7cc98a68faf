"""Follow a rollout with watches and decide, as early as the evidence allows, how it ended.

Success is `kubectl rollout status`: the Deployment's observedGeneration is current and
updatedReplicas == availableReplicas == status.replicas == spec.replicas. Failure is a new pod
that cannot start (crash loop, image that cannot be pulled, bad container config) or a release
not ready within its health timeout. Kubernetes itself never gives up on such a rollout before
progressDeadlineSeconds, and even then only sets a condition, hence this module.

The functions that read pods and events are pure, so the reasons users read are unit-tested.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from homeport.deployer import objects
from homeport.deployer.errors import RolloutError
from homeport.deployer.kube import Kube, WatchEvent

# Waiting reasons that will not fix themselves: fail at once instead of at the timeout.
FATAL_WAITING = (
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
)
_STATUS_CODE = re.compile(r"statuscode: (\d+)")
REVISION = "deployment.kubernetes.io/revision"
# Seconds a pod may show a container config error before it counts: the kubelet reports
# "failed to sync secret cache" for a Secret created a moment before the pod.
CONFIG_GRACE = 20
# Seconds between re-reading what the watches gathered when nothing new arrives.
TICK = 2.0
HASH_LABEL = "pod-template-hash"


@dataclass(frozen=True)
class Progress:
    """Where a rollout stands."""

    ready: int
    wanted: int
    done: bool = False
    failure: str | None = None


def _ready(pod: Mapping[str, Any]) -> bool:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _live(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]


def _age(pod: Mapping[str, Any], now: datetime) -> float:
    created = _when(pod.get("metadata", {}).get("creationTimestamp"))
    return (now - created).total_seconds() if created else 0.0


def pod_failure(pod: Mapping[str, Any], now: datetime | None = None) -> str | None:
    """Why this pod can never become ready, if it shows that already."""
    status = pod.get("status", {})
    now = now or datetime.now(UTC)
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason") or ""
        if reason not in FATAL_WAITING:
            continue
        message = (waiting.get("message") or "").strip()
        if reason == "CrashLoopBackOff":
            return crash_reason(cs)
        if reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
            return f"image {cs.get('image')} cannot be pulled: {message or reason} ({reason})"
        if _age(pod, now) < CONFIG_GRACE:
            # The kubelet's Secret cache may lag a just-created Secret; it retries by itself.
            continue
        return f"container cannot be created: {message or reason} ({reason})"
    if status.get("phase") == "Failed":
        return f"pod failed: {status.get('message') or status.get('reason') or 'no reason given'}"
    return None


def crash_reason(container_status: Mapping[str, Any]) -> str:
    """`container exited with code 1 and is crash-looping (CrashLoopBackOff)`."""
    last = (container_status.get("lastState") or {}).get("terminated") or {}
    restarts = container_status.get("restartCount") or 0
    if last.get("reason") == "OOMKilled":
        how = "was killed for going over its memory limit (OOMKilled)"
    elif "exitCode" in last:
        how = f"exited with code {last['exitCode']}"
        if last.get("reason") not in (None, "", "Error", "Completed"):
            how += f" ({last['reason']})"
    else:
        how = "keeps stopping"
    times = f" after {restarts} restarts" if restarts > 1 else ""
    return f"container {how} and is crash-looping{times} (CrashLoopBackOff)"


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def probe_failure(message: str, health_path: str | None, port: int) -> str:
    """The kubelet's probe message in a user's words: `HTTP 404 on /healthz`."""
    text = message.split(":", 1)[1].strip() if ":" in message else message
    where = f"on {health_path}" if health_path else f"on port {port}"
    code = _STATUS_CODE.search(text)
    if code:
        return f"HTTP {code.group(1)} {where}"
    if "connection refused" in text:
        return f"connection refused on port {port}"
    if "deadline exceeded" in text or "timeout" in text.lower():
        return f"no answer within {objects.PROBE_TIMEOUT}s {where}"
    return f"{text} ({where})"


def readiness_reason(
    events: Iterable[Mapping[str, Any]], health_path: str | None, port: int
) -> str | None:
    """`readiness probe failed: HTTP 404 on /healthz (5 times in 12s)`, from Unhealthy events."""
    count = 0
    first: datetime | None = None
    last: datetime | None = None
    message = ""
    for ev in events:
        if ev.get("reason") != "Unhealthy" or "eadiness" not in (ev.get("message") or ""):
            continue
        series = ev.get("series") or {}
        count += int(ev.get("count") or series.get("count") or 1)
        start = _when(ev.get("firstTimestamp") or ev.get("eventTime"))
        end = _when(
            ev.get("lastTimestamp") or series.get("lastObservedTime") or ev.get("eventTime")
        )
        if start and (first is None or start < first):
            first = start
        if end and (last is None or end >= last):
            last = end
            message = ev.get("message") or message
        elif not message:
            message = ev.get("message") or ""
    if not count:
        return None
    span = int((last - first).total_seconds()) if first and last else 0
    times = "once" if count == 1 else f"{count} times in {span}s"
    return f"readiness probe failed: {probe_failure(message, health_path, port)} ({times})"


def timeout_reason(
    pods: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    deployment: Mapping[str, Any] | None,
    *,
    timeout: int,
    health_path: str | None,
    port: int,
) -> str:
    """Why a release was not ready in time, from the best evidence there is."""
    pods = _live(pods)
    suffix = f"; not ready within {timeout}s"
    probe = readiness_reason(events, health_path, port)
    if probe:
        return probe + suffix
    for pod in pods:
        for cond in pod.get("status", {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                return (
                    f"pod cannot be scheduled: {cond.get('message') or cond.get('reason')}{suffix}"
                )
        for cs in pod.get("status", {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                detail = f": {waiting['message']}" if waiting.get("message") else ""
                return f"container still waiting ({waiting['reason']}{detail}){suffix}"
    if not pods:
        for cond in (deployment or {}).get("status", {}).get("conditions") or []:
            if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
                return f"no pod could be created: {cond.get('message')}{suffix}"
        return f"no pod of the release was created{suffix}"
    return f"the readiness probe never passed{suffix}"


def assess(
    deployment: Mapping[str, Any] | None, pods: Iterable[Mapping[str, Any]], version: int
) -> Progress:
    """Done, failed or still going, from the Deployment and the new release's pods."""
    new = _live(pods)
    wanted = int(((deployment or {}).get("spec") or {}).get("replicas", 1))
    ready = sum(1 for p in new if _ready(p))
    for pod in new:
        failure = pod_failure(pod)
        if failure:
            return Progress(ready, wanted, failure=failure)
    if deployment is None:
        return Progress(ready, wanted)
    running = objects.template_release(deployment)
    if running != version:
        return Progress(
            ready,
            wanted,
            failure=f"the Deployment was changed to run v{running} while v{version} rolled out",
        )
    meta = deployment.get("metadata", {})
    status = deployment.get("status") or {}
    if int(meta.get("generation", 0)) > int(status.get("observedGeneration", 0)):
        return Progress(ready, wanted)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Progress(ready, wanted, failure=f"Kubernetes gave up: {cond.get('message')}")
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    done = updated >= wanted and total <= updated and available >= updated
    return Progress(ready, wanted, done=done)


def new_replicaset_hash(
    deployment: Mapping[str, Any], replicasets: Iterable[Mapping[str, Any]]
) -> str | None:
    """pod-template-hash of the Deployment's current ReplicaSet (as `kubectl rollout status`)."""
    meta = deployment.get("metadata", {})
    revision = (meta.get("annotations") or {}).get(REVISION)
    if not revision:
        return None
    for rs in replicasets:
        rs_meta = rs.get("metadata", {})
        owners = {o.get("uid") for o in rs_meta.get("ownerReferences") or []}
        if (
            meta.get("uid") in owners
            and (rs_meta.get("annotations") or {}).get(REVISION) == revision
        ):
            return (rs_meta.get("labels") or {}).get(HASH_LABEL)
    return None


def of_replicaset(
    pods: Iterable[Mapping[str, Any]], pod_hash: str | None
) -> list[Mapping[str, Any]]:
    """The pods of one ReplicaSet by its pod-template-hash (all of them while it is unknown)."""
    if pod_hash is None:
        return list(pods)
    return [
        p for p in pods if (p.get("metadata", {}).get("labels") or {}).get(HASH_LABEL) == pod_hash
    ]


def _pump(
    kube: Kube,
    kind: str,
    stop: threading.Event,
    out: queue.Queue[tuple[str, WatchEvent] | BaseException],
    **kw: str,
) -> None:
    try:
        for event in kube.watch(kind, stop, **kw):
            out.put((kind, event))
    except BaseException as exc:  # handed to the following thread
        out.put(exc)


def _fold(store: dict[str, dict[str, Any]], event: WatchEvent) -> None:
    if event.type == "SYNC":
        store.clear()
        for item in event.items:
            store[item["metadata"]["name"]] = item
    elif event.type == "DELETED":
        store.pop(event.obj.get("metadata", {}).get("name", ""), None)
    elif event.obj.get("metadata", {}).get("name"):
        store[event.obj["metadata"]["name"]] = event.obj


def pod_events(kube: Kube, pods: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Events of the given pods (read by name: homeport needs no list on everything)."""
    found: list[dict[str, Any]] = []
    for pod in pods:
        name = pod.get("metadata", {}).get("name")
        if name:
            listed = kube.list(
                "events", fields=f"involvedObject.kind=Pod,involvedObject.name={name}"
            )
            found.extend(listed.get("items") or [])
    return found


def follow(
    kube: Kube,
    *,
    app: str,
    version: int,
    timeout: int,
    health_path: str | None,
    port: int,
    emit: Callable[[str], None],
    deployment: str | None = None,
    pods_selector: str | None = None,
) -> float:
    """Wait, by watching, until release `version` of the app is fully available.

    `deployment` and `pods_selector` name another Deployment of the release than the app's
    web one (a process) and the labels of its pods.
    Returns the seconds it took; raises RolloutError with the cause as soon as one is known.
    """
    name = deployment or app
    selector = pods_selector or objects.release_selector(app, version)
    started = time.monotonic()
    deadline = started + timeout
    stop = threading.Event()
    inbox: queue.Queue[tuple[str, WatchEvent] | BaseException] = queue.Queue()
    deployments: dict[str, dict[str, Any]] = {}
    pods: dict[str, dict[str, Any]] = {}
    threads = [
        threading.Thread(
            target=_pump,
            args=(kube, "deployments", stop, inbox),
            kwargs={"fields": f"metadata.name={name}"},
            daemon=True,
        ),
        threading.Thread(
            target=_pump,
            args=(kube, "pods", stop, inbox),
            kwargs={"selector": selector},
            daemon=True,
        ),
    ]
    for thread in threads:
        thread.start()
    shown = -1
    seen_revision: str | None = None
    pod_hash: str | None = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                new = of_replicaset(pods.values(), pod_hash)
                raise RolloutError(
                    timeout_reason(
                        new,
                        pod_events(kube, new),
                        deployments.get(name),
                        timeout=timeout,
                        health_path=health_path,
                        port=port,
                    )
                )
            try:
                item: tuple[str, WatchEvent] | BaseException | None = inbox.get(
                    timeout=min(remaining, TICK)
                )
            except queue.Empty:
                item = None  # nothing new; time-based rules (grace periods) may still apply
            while item is not None:
                if isinstance(item, BaseException):
                    raise item
                kind, event = item
                _fold(deployments if kind == "deployments" else pods, event)
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    item = None
            current = deployments.get(name)
            revision = ((current or {}).get("metadata", {}).get("annotations") or {}).get(REVISION)
            if current is not None and revision and revision != seen_revision:
                # A new revision: find its ReplicaSet, whose pods are the ones that count.
                # From the cache: a ReplicaSet it does not hold yet is looked for again at
                # the next event, and a current list would wait on the rollout's own writes.
                listed = kube.list("replicasets", selector=selector, cached=True)
                pod_hash = new_replicaset_hash(current, listed.get("items") or [])
                seen_revision = revision if pod_hash else None
            progress = assess(current, of_replicaset(pods.values(), pod_hash), version)
            if progress.failure:
                raise RolloutError(progress.failure)
            if progress.ready != shown and progress.ready:
                shown = progress.ready
                emit(f"       {progress.ready} of {progress.wanted} new pods ready")
            if progress.done:
                return time.monotonic() - started
    finally:
        stop.set()
