"""One-off commands (`homeport run`): a pod from the app's live release that runs once.

A run is a bare pod `<app>-run-<id>` with restartPolicy Never, the live release's image, its
env Secret and its run settings. The pod is the run's only record: its labels name the app, the
run and the release, its container status holds the exit code. Once a finished run's exit code
has been read the pod is deleted; a run pod nobody asks about is reaped once it is older than
HOMEPORT_RUN_TIMEOUT plus RUN_KEEP.

Run pods never carry the app's name label: the app's Service selects pods by it, and a run
must not be sent the app's traffic. No exec into running pods: homeport's Role has none.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from homeport.deployer import objects
from homeport.deployer.deploy import secret_of, spec_of
from homeport.deployer.errors import ApiError
from homeport.deployer.kube import Kube
from homeport.errors import InvalidInput, NotFound
from homeport.release import Release
from homeport.settings import Settings
from homeport.spec import RunSpec

log = logging.getLogger(__name__)

RUN_LABEL = "homeport.dev/run"
RUN_OF_LABEL = "homeport.dev/run-of"
PROCESS_LABEL = "homeport.dev/process"
COMMAND_ANNOTATION = "homeport.dev/command"
CONTAINER = "app"
_ID = re.compile(r"[0-9a-f]{12}")
# A command is argv, not a payload: the pod spec lands in etcd, whose objects are capped at
# about 1.5 MiB, and each argument in a process's argv at 128 KiB. Far below both.
MAX_ARGS = 256
MAX_COMMAND_BYTES = 64 * 1024
# A finished run whose exit code nobody reads is kept this long past the run timeout.
RUN_KEEP = 600
# How often a run's pod is read while waiting for it to start or to end.
POLL = 0.1
# A container whose log ended but whose pod the kubelet has not yet marked ended.
END_WAIT = 30.0
# Waiting reasons from which a run's pod never starts by itself.
_STUCK = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}

State = Literal["pending", "running", "succeeded", "failed"]


@dataclass(frozen=True)
class RunStatus:
    """What a run's pod says about it."""

    id: str
    app: str
    release: int | None
    command: list[str]
    state: State
    exit_code: int | None
    reason: str
    created_at: str

    @property
    def ended(self) -> bool:
        return self.state in ("succeeded", "failed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "app": self.app,
            "release": self.release,
            "command": self.command,
            "status": self.state,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "created_at": self.created_at,
        }


def check_command(value: object) -> list[str]:
    """The command as argv, or InvalidInput saying what a command is."""
    how = 'send {"command": ["manage.py", "migrate"]}: a non-empty list of strings'
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"command must be a non-empty list of strings; {how}")
    if not all(isinstance(arg, str) for arg in value):
        raise InvalidInput(f"every item of command must be a string; {how}")
    if len(value) > MAX_ARGS:
        raise InvalidInput(f"command has {len(value)} arguments, over the limit of {MAX_ARGS}")
    if sum(len(arg.encode()) for arg in value) > MAX_COMMAND_BYTES:
        raise InvalidInput(f"command is over {MAX_COMMAND_BYTES // 1024} KiB")
    if any("\0" in arg for arg in value):
        raise InvalidInput("command arguments cannot contain NUL characters")
    return list(value)


def check_id(run_id: str) -> str:
    if not _ID.fullmatch(run_id):
        raise NotFound(f"no run {run_id!r}: run ids are 12 hex digits, as `homeport run` prints")
    return run_id


def pod_name(app: str, run_id: str) -> str:
    return f"{app}-run-{run_id}"


def process_spec(release: Release, process: str) -> RunSpec:
    """The run settings (memory, cpu, volumes) a command gets when run as `process`."""
    spec = spec_of(release)
    if process == "web":
        return spec
    part = spec.processes.get(process)
    if part is None:
        known = ", ".join(["web", *sorted(spec.processes)])
        raise NotFound(
            f"app '{release.app}' has no process {process!r}; its processes are: {known}"
        )
    return replace(spec, memory=part.memory, cpu=part.cpu)


def pod(
    app: str,
    run_id: str,
    release: Release,
    command: Sequence[str],
    spec: RunSpec,
    *,
    process: str,
    timeout: int,
) -> dict[str, Any]:
    """The run's pod: the release's image and env Secret, the process's resources, argv as is."""
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": release.image,
        "imagePullPolicy": "IfNotPresent",
        # `args`, as `docker run IMAGE COMMAND...`: the image's CMD is replaced, an ENTRYPOINT
        # (a wrapper that sets things up, then runs its arguments) stays, as for processes.
        "args": list(command),
        "envFrom": [{"secretRef": {"name": secret_of(release)}}],
    }
    amounts = {k: v for k, v in (("memory", spec.memory), ("cpu", spec.cpu)) if v}
    if amounts:
        container["resources"] = {"requests": dict(amounts), "limits": dict(amounts)}
    # The process's volumes, mounted as its Deployment mounts them (web: all of them).
    names = None if process == "web" else spec.processes[process].volumes
    pod_volumes, mounts = objects.volume_parts(app, spec, names)
    if mounts:
        container["volumeMounts"] = mounts
    pod_spec: dict[str, Any] = {
        **({"volumes": pod_volumes} if pod_volumes else {}),
        "containers": [container],
        "restartPolicy": "Never",
        # Kubernetes itself stops a run that outlives the timeout, whoever is watching.
        "activeDeadlineSeconds": timeout,
        "terminationGracePeriodSeconds": 5,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(app, run_id),
            "labels": {
                objects.MANAGED_LABEL: objects.MANAGER,
                RUN_OF_LABEL: app,
                RUN_LABEL: run_id,
                PROCESS_LABEL: process,
                objects.RELEASE_KEY: str(release.version),
            },
            "annotations": {COMMAND_ANNOTATION: json.dumps(list(command))},
        },
        "spec": pod_spec,
    }


def _command_of(pod_obj: Mapping[str, Any]) -> list[str]:
    raw = (pod_obj.get("metadata", {}).get("annotations") or {}).get(COMMAND_ANNOTATION)
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [str(arg) for arg in found] if isinstance(found, list) else []


def _container_state(pod_obj: Mapping[str, Any]) -> dict[str, Any]:
    for status in pod_obj.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            state: dict[str, Any] = status.get("state") or {}
            return state
    return {}


def _why(pod_obj: Mapping[str, Any], ended: Mapping[str, Any], exit_code: int | None) -> str:
    """Why a run failed, when its exit code alone does not say."""
    if pod_obj.get("status", {}).get("reason") == "DeadlineExceeded":
        return "the command ran past HOMEPORT_RUN_TIMEOUT and was stopped"
    if ended.get("reason") == "OOMKilled":
        return "the command ran out of memory ([run] memory in homeport.toml)"
    if ended.get("reason") in ("StartError", "ContainerCannotRun"):
        return f"the command could not start: {str(ended.get('message') or '').strip()}"
    if exit_code is not None:
        return ""  # a plain non-zero exit: the code says it all
    return str(pod_obj.get("status", {}).get("message") or "the pod failed")


def status_of(app: str, pod_obj: Mapping[str, Any]) -> RunStatus:
    """A run's status from its pod (pure, so the reasons are unit-tested)."""
    meta = pod_obj.get("metadata", {})
    labels = meta.get("labels") or {}
    version = labels.get(objects.RELEASE_KEY)
    phase = pod_obj.get("status", {}).get("phase") or "Pending"
    state = _container_state(pod_obj)
    ended = state.get("terminated")
    exit_code = int(ended["exitCode"]) if ended and "exitCode" in ended else None
    run_state: State
    reason = ""
    if phase == "Succeeded" or (phase != "Failed" and ended and exit_code == 0):
        # A container that ended is final (restartPolicy Never); the phase follows it.
        run_state = "succeeded"
    elif phase == "Failed" or ended:
        run_state = "failed"
        reason = _why(pod_obj, ended or {}, exit_code)
    elif phase == "Running":
        run_state = "running"
    else:
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in _STUCK:
            run_state = "failed"
            reason = f"the command could not start: {waiting['reason']}"
            if waiting.get("message"):
                reason += f": {str(waiting['message']).strip()}"
        else:
            run_state = "pending"
            for condition in pod_obj.get("status", {}).get("conditions") or []:
                if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                    # No node has room (memory, cpu): it waits, and says why.
                    reason = f"waiting for room in the cluster: {condition.get('message', '')}"
    return RunStatus(
        id=str(labels.get(RUN_LABEL) or ""),
        app=app,
        release=int(version) if version and str(version).isdigit() else None,
        command=_command_of(pod_obj),
        state=run_state,
        exit_code=exit_code,
        reason=reason,
        created_at=str(meta.get("creationTimestamp") or ""),
    )


def _read(kube: Kube, app: str, run_id: str) -> dict[str, Any]:
    found = kube.get("pods", pod_name(app, check_id(run_id)))
    if found is None or (found["metadata"].get("labels") or {}).get(RUN_OF_LABEL) != app:
        raise NotFound(
            f"app '{app}' has no run {run_id}: it never existed, or it ended and its exit"
            " code was read (runs are removed then)"
        )
    return found


def _remove(kube: Kube, name: str) -> None:
    try:
        kube.request("DELETE", kube.path("pods", name), query={"gracePeriodSeconds": 0})
    except ApiError as exc:
        if exc.status != 404:
            raise


def _age(stamp: str | None, now: float) -> float:
    if not stamp:
        return 0.0
    try:
        made = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return 0.0
    return now - made.timestamp()


def reap(kube: Kube, timeout: int) -> list[str]:
    """Delete run pods older than the run timeout plus RUN_KEEP; returns their names."""
    now = time.time()
    removed = []
    for item in kube.list("pods", selector=RUN_LABEL).get("items") or []:
        name = item["metadata"]["name"]
        if _age(item["metadata"].get("creationTimestamp"), now) > timeout + RUN_KEEP:
            _remove(kube, name)
            removed.append(name)
    if removed:
        log.info("reaped %d run pods nobody read: %s", len(removed), ", ".join(removed))
    return removed


def start(
    settings: Settings, release: Release, command: Sequence[str], process: str = "web"
) -> RunStatus:
    """Create the run's pod from the release; returns its first status."""
    spec = process_spec(release, process)
    run_id = secrets.token_hex(6)
    body = pod(
        release.app,
        run_id,
        release,
        command,
        spec,
        process=process,
        timeout=settings.run_timeout,
    )
    with Kube(settings) as kube:
        reap(kube, settings.run_timeout)
        made = kube.create(body)
        if made is None:  # 48 random bits collided with a live run: astronomically rare
            raise ApiError(f"run pod {body['metadata']['name']} exists already; run again", 409)
        return status_of(release.app, made)


def status(settings: Settings, app: str, run_id: str) -> RunStatus:
    """The run's status; a run that has ended is removed once this has read its exit code."""
    with Kube(settings) as kube:
        found = status_of(app, _read(kube, app, run_id))
        if found.ended:
            _remove(kube, pod_name(app, run_id))
        return found


def stop(settings: Settings, app: str, run_id: str) -> RunStatus:
    """Stop the run (its pod is deleted, the command gets SIGTERM); its status before."""
    with Kube(settings) as kube:
        found = status_of(app, _read(kube, app, run_id))
        kube.delete("pods", pod_name(app, run_id))
        return found


def exists(settings: Settings, app: str, run_id: str) -> None:
    """NotFound unless the run's pod is there."""
    with Kube(settings) as kube:
        _read(kube, app, run_id)


def output(
    settings: Settings, app: str, run_id: str, follow: bool, stop: threading.Event
) -> Iterator[bytes]:
    """The run's output; following waits for the command to start and for its pod to end."""
    name = pod_name(app, run_id)
    with Kube(settings) as kube:
        current = status_of(app, _read(kube, app, run_id))
        said = ""
        # Bounded: a pod that never starts is reaped by then anyway.
        deadline = time.monotonic() + settings.run_timeout
        while follow and current.state == "pending" and time.monotonic() < deadline:
            if current.reason and current.reason != said:
                said = current.reason
                yield f"homeport: {said}\n".encode()
            if stop.wait(POLL):
                return
            current = status_of(app, _read(kube, app, run_id))
        if stop.is_set() or current.state == "pending":
            return
        if current.state == "failed" and current.exit_code is None:
            yield f"homeport: {current.reason}\n".encode()
            return
        query: dict[str, str | int] = {"container": CONTAINER}
        if follow:
            query["follow"] = "true"
        try:
            yield from kube.stream(kube.path("pods", name) + "/log", stop, query=query)
        except ApiError as exc:
            if exc.status != 404:
                raise
            return
        # The log ends when the container does; the exit code is readable once the pod ended.
        deadline = time.monotonic() + END_WAIT
        while follow and not current.ended and time.monotonic() < deadline:
            if stop.wait(POLL):
                return
            current = status_of(app, _read(kube, app, run_id))
