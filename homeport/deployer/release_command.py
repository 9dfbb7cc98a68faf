"""The release command: a Job `<app>-release-v<N>` run before a release's web pods change.

It runs [release] command from the release's image with the release's env Secret, once
(backoffLimit 0), for at most [release] timeout seconds (activeDeadlineSeconds). Its output
is followed from the pod's log as it is written. An adapter like deploy.py: it answers with
`Ran` or `CommandFailed` and never writes records.

The Job's pods carry none of the app's labels: the app's Service and Deployment select pods
by the app label, and a migration must never receive traffic nor count as a web pod.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeport.deployer import objects, volumes
from homeport.deployer.errors import RolloutError
from homeport.deployer.kube import Kube, WatchEvent
from homeport.deployer.rollout import pod_failure
from homeport.errors import HomeportError
from homeport.release import Release
from homeport.settings import Settings
from homeport.spec import RunSpec

log = logging.getLogger(__name__)

Emit = Callable[[str], None]

# On a release command's pod: the Job it belongs to (the app's own labels are left off).
JOB_LABEL = "homeport.dev/release-job"
# Seconds past activeDeadlineSeconds homeport waits for the Job controller to stop the pod
# before it deletes the Job itself: the deadline holds even if the controller lags.
DEADLINE_MARGIN = 30
# Seconds to wait for the rest of the output once the Job has ended.
LOG_GRACE = 10.0
# A line of output longer than this is cut: one line must not fill the job log.
MAX_LINE = 4000
# A Job of the same name left by an earlier install (its records gone) is deleted first;
# its deletion is asynchronous, so creating the new one is tried this often.
CREATE_TRIES = 20
TICK = 1.0
# A followed log can end a moment before the container's last lines reach it: at the end
# the log is read once more, up to this much, for what the stream missed.
REREAD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Ran:
    """The command exited 0."""

    seconds: float


@dataclass(frozen=True)
class CommandFailed:
    """The command did not succeed; `reason` is the line users read."""

    reason: str
    exit_code: int | None = None
    timed_out: bool = False


Outcome = Ran | CommandFailed


def job_name(app: str, version: int) -> str:
    return f"{app}-release-v{version}"


def pod_spec(app: str, image: str, spec: RunSpec, secret_name: str) -> dict[str, Any]:
    """The pod that runs the release command: the one place its shape is decided."""
    container: dict[str, Any] = {
        "name": "release",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        # `args`: the image's ENTRYPOINT stays and the command replaces its CMD, as for
        # processes, cron and `homeport run` (and as `docker run IMAGE COMMAND` does).
        "args": list(spec.release_command),
        "envFrom": [{"secretRef": {"name": secret_name}}],
    }
    amounts = {k: v for k, v in (("memory", spec.memory), ("cpu", spec.cpu)) if v}
    if amounts:
        container["resources"] = {"requests": dict(amounts), "limits": dict(amounts)}
    # The command sees the app's data where the app does: migrations work on it.
    pod_volumes, mounts = objects.volume_parts(app, spec)
    if mounts:
        container["volumeMounts"] = mounts
    return {
        **({"volumes": pod_volumes} if pod_volumes else {}),
        "containers": [container],
        "restartPolicy": "Never",
        # Like the web pods: no API credentials, no service-link env noise.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
    }


def job(app: str, version: int, image: str, spec: RunSpec, secret_name: str) -> dict[str, Any]:
    """The Job running release `version`'s command once, within its timeout."""
    name = job_name(app, version)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": {**objects.labels(app), objects.RELEASE_KEY: str(version)},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.release_timeout,
            "template": {
                "metadata": {"labels": {objects.MANAGED_LABEL: objects.MANAGER, JOB_LABEL: name}},
                "spec": pod_spec(app, image, spec, secret_name),
            },
        },
    }


def _create(kube: Kube, body: Mapping[str, Any]) -> None:
    name = body["metadata"]["name"]
    for _ in range(CREATE_TRIES):
        if kube.create(body) is not None:
            return
        # Left by an earlier install whose records are gone: its numbers are being reused.
        kube.delete("jobs", name, cascade=True)
        time.sleep(0.5)
    raise RolloutError(
        f"Job {name} exists and could not be replaced; delete it with `kubectl -n"
        f" {kube.namespace} delete job {name}` and deploy again"
    )


def run(
    settings: Settings,
    release: Release,
    spec: RunSpec,
    *,
    secret_name: str,
    emit: Emit,
) -> Outcome:
    """Run the release command of `spec` from the release's image; follow it to its end.

    The env Secret `secret_name` must exist. Raises HomeportError when the cluster cannot
    be asked (nothing ran then, or nothing is known of how it ended).
    """
    body = job(release.app, release.version, release.image, spec, secret_name)
    name = body["metadata"]["name"]
    with Kube(settings) as kube:
        volumes.create_missing(settings, kube, release.app, spec, emit)
        _create(kube, body)
        try:
            return _follow(kube, name, spec.release_timeout, emit)
        except BaseException:
            # Lost track of it, or stopped from outside (job timeout, shutdown): a command
            # nobody follows must not go on changing data for a release that will not go live.
            try:
                kube.delete("jobs", name, cascade=True)
            except HomeportError as exc:
                log.warning("could not delete Job %s: %s", name, exc)
            raise


def _conditions(job_obj: Mapping[str, Any]) -> dict[str, str]:
    """Condition type -> reason of the Job's true conditions."""
    found = {}
    for cond in (job_obj.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True":
            found[str(cond.get("type"))] = str(cond.get("reason") or "")
    return found


def _started(pod: Mapping[str, Any]) -> bool:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def _exit_code(pod: Mapping[str, Any] | None) -> int | None:
    for cs in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        terminated = (cs.get("state") or {}).get("terminated") or {}
        if "exitCode" in terminated:
            return int(terminated["exitCode"])
    return None


Item = tuple[str, Any]


def _pump(kube: Kube, kind: str, stop: threading.Event, out: queue.Queue[Item], **kw: str) -> None:
    try:
        for event in kube.watch(kind, stop, **kw):
            out.put((kind, event))
    except BaseException as exc:  # handed to the following thread
        out.put(("error", exc))


def _logs(kube: Kube, pod: str, stop: threading.Event, out: queue.Queue[Item]) -> None:
    try:
        for line in kube.follow_log(pod, stop):
            out.put(("log", line))
    except HomeportError as exc:
        out.put(("log", f"(the output could not be read: {exc})"))
    except BaseException as exc:
        out.put(("error", exc))
    finally:
        out.put(("log-end", None))


def _fold(store: dict[str, dict[str, Any]], event: WatchEvent) -> None:
    if event.type == "SYNC":
        store.clear()
        store.update({item["metadata"]["name"]: item for item in event.items})
    elif event.type == "DELETED":
        store.pop(event.obj.get("metadata", {}).get("name", ""), None)
    elif event.obj.get("metadata", {}).get("name"):
        store[event.obj["metadata"]["name"]] = event.obj


def _follow(kube: Kube, name: str, timeout: int, emit: Emit) -> Outcome:
    started = time.monotonic()
    deadline = started + timeout + DEADLINE_MARGIN
    stop = threading.Event()
    inbox: queue.Queue[Item] = queue.Queue()
    jobs: dict[str, dict[str, Any]] = {}
    pods: dict[str, dict[str, Any]] = {}
    for kind, kw in (
        ("jobs", {"fields": f"metadata.name={name}"}),
        ("pods", {"selector": f"{JOB_LABEL}={name}"}),
    ):
        threading.Thread(
            target=_pump, args=(kube, kind, stop, inbox), kwargs=kw, daemon=True
        ).start()
    followed: str | None = None
    logs_done = False
    last_line = ""
    streamed = 0

    def show(text: str) -> None:
        nonlocal last_line
        line = text if len(text) <= MAX_LINE else text[:MAX_LINE] + " …"
        emit(f"       {line}")
        if line.strip():
            last_line = line.strip()

    ended: dict[str, str] | None = None
    ended_at = 0.0
    try:
        while True:
            now = time.monotonic()
            if ended is not None and (
                logs_done
                or now > ended_at + LOG_GRACE
                # Stopped at its deadline before it started: there is no output to wait for.
                or (followed is None and "DeadlineExceeded" in ended.values())
            ):
                break
            if now > deadline:
                kube.delete("jobs", name, cascade=True)
                return CommandFailed(f"release command timed out after {timeout} s", timed_out=True)
            try:
                kind, item = inbox.get(timeout=TICK)
            except queue.Empty:
                continue
            if kind == "error":
                raise item
            if kind == "log":
                streamed += 1
                show(item)
                continue
            if kind == "log-end":
                logs_done = True
                continue
            _fold(jobs if kind == "jobs" else pods, item)
            for pod_name, pod in pods.items():
                if followed is None and _started(pod):
                    # backoffLimit 0: the first pod that starts is the only one that runs.
                    followed = pod_name
                    threading.Thread(
                        target=_logs, args=(kube, pod_name, stop, inbox), daemon=True
                    ).start()
                failure = pod_failure(pod)
                if ended is None and failure and not _started(pod):
                    kube.delete("jobs", name, cascade=True)
                    return CommandFailed(f"release command could not start: {failure}")
            code = _exit_code(pods.get(followed)) if followed else None
            if ended is None and code is not None:
                # The one attempt has ended: its exit code decides, without waiting for the
                # Job controller to mark the Job (a second or more on a busy box).
                ended, ended_at = {"Exited": str(code)}, time.monotonic()
            state = _conditions(jobs.get(name) or {})
            if ended is None and {
                "Complete",
                "SuccessCriteriaMet",
                "Failed",
                "FailureTarget",
            } & set(state):
                ended, ended_at = state, time.monotonic()
    finally:
        stop.set()
    seconds = time.monotonic() - started
    if followed is not None:
        text = kube.read_log(followed, REREAD_BYTES) or ""
        # Split as the stream does (on newlines only), so the counts match.
        written = text.split("\n")
        if written[-1] == "":
            written.pop()
        for missed in written[streamed:]:
            show(missed.rstrip("\r"))
    code = _exit_code(pods.get(followed)) if followed else None
    reason = ended.get("Failed") or ended.get("FailureTarget") or ""
    # Stopped at the deadline, whether the Job controller said so first or the kill did.
    if reason == "DeadlineExceeded" or (code not in (None, 0) and seconds >= timeout):
        return CommandFailed(f"release command timed out after {timeout} s", timed_out=True)
    if code == 0 or "Complete" in ended or "SuccessCriteriaMet" in ended:
        return Ran(seconds)
    last_pod = pods.get(followed or "")
    if followed and _exit_code(last_pod) is None:
        last_pod = kube.get("pods", followed)
    code = _exit_code(last_pod)
    said = f": {last_line}" if last_line else " (no output)"
    if code is None:
        return CommandFailed(f"release command failed ({reason or 'no reason given'}){said}")
    return CommandFailed(f"release command exited with {code}{said}", exit_code=code)


def drop_jobs(settings: Settings, app: str, versions: set[int]) -> int:
    """Delete the release-command Jobs (and their pods) of these releases; returns how many."""
    if not versions:
        return 0
    deleted = 0
    with Kube(settings) as kube:
        listed = kube.list("jobs", selector=objects.selector(app))
        for item in listed.get("items") or []:
            meta = item.get("metadata") or {}
            version = str((meta.get("labels") or {}).get(objects.RELEASE_KEY, ""))
            if version.isdigit() and int(version) in versions:
                if kube.delete("jobs", meta["name"], cascade=True):
                    deleted += 1
    return deleted
