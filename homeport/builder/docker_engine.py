"""The Docker engine adapter: the only module that imports `docker`.

Drives the SDK's low-level APIClient so build and push output streams as it happens, and
turns docker and requests errors into BuildError / RegistryError with messages a pushing user
can act on.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from homeport.builder.errors import BuildError, EngineUnreachable
from homeport.registry import RegistryError, RegistryUnreachable

log = logging.getLogger(__name__)

Output = Callable[[str], None]

# Seconds between attempts to kill the running step once a build is past its deadline (a
# step's container can be created a moment before it starts and cannot be killed until then).
_KILL_INTERVAL = 0.25
# Seconds past the deadline after which a build whose step survived the kill is abandoned.
_GIVE_UP = 30
# Seconds between two progress lines of one layer during a push.
_PROGRESS_INTERVAL = 1.0
# Socket timeout of requests other than the build stream (push, kill): a registry or engine
# that says nothing for this long is treated as unreachable.
_API_TIMEOUT = 120

_RUNNING_IN = re.compile(r" ---> Running in ([0-9a-f]{6,64})")
_EXIT_CODE = re.compile(r"returned a non-zero code: (\d+)")
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "dial tcp",
    "no route to host",
    "server gave http response to https client",
    "timeout exceeded",
)
_CONNECTION_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,
)


def _describe(base_url: str | None) -> str:
    return f"the Docker engine at {base_url}" if base_url else "the Docker engine"


def _probe(base_url: str | None) -> None:
    """Connect to a unix-socket engine once, so a dead one fails here, cleanly.

    The SDK leaks the socket of a failed unix connection; our own probe closes it.
    """
    url = base_url or "unix:///var/run/docker.sock"
    for prefix in ("unix://", "http+unix://"):
        if url.startswith(prefix):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(url[len(prefix) :])
            return


class _Lines:
    """Splits streamed text into whole lines."""

    def __init__(self, output: Output) -> None:
        self._output = output
        self._partial = ""

    def feed(self, text: str) -> list[str]:
        self._partial += text.replace("\r\n", "\n").replace("\r", "\n")
        *lines, self._partial = self._partial.split("\n")
        lines = [line.rstrip() for line in lines if line.strip()]
        for line in lines:
            self._output(line)
        return lines

    def flush(self) -> None:
        if self._partial.strip():
            self._output(self._partial.rstrip())
        self._partial = ""


class _BuildProgress:
    """What the build stream has said so far: lines, the current step, the result."""

    def __init__(self, lines: _Lines) -> None:
        self.lines = lines
        self.step = ""
        self.container: str | None = None
        self.image_id = ""
        self.failure: Mapping[str, Any] | None = None

    def take(self, chunk: Mapping[str, Any]) -> None:
        if "stream" in chunk:
            for line in self.lines.feed(str(chunk["stream"])):
                if line.startswith("Step "):
                    self.step = line
                match = _RUNNING_IN.fullmatch(line)
                if match:
                    self.container = match.group(1)
        elif "error" in chunk:
            # The error is the stream's last message; the caller reads on to the end so the
            # connection goes back to the pool instead of leaking.
            self.lines.flush()
            self.failure = chunk
        elif isinstance(chunk.get("aux"), dict):
            self.image_id = str(chunk["aux"].get("ID", self.image_id))


class _Watchdog:
    """Past the deadline, keeps killing the build's running step until the build stops."""

    def __init__(self, client: Any, deadline: float) -> None:
        self._client = client
        self._deadline = deadline
        self._done = threading.Event()
        self.container: str | None = None
        self.fired = False
        self._thread = threading.Thread(target=self._run, name="build-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        if self._done.wait(max(0.0, self._deadline - time.monotonic())):
            return
        self.fired = True
        killed: set[str] = set()
        while not self._done.is_set():
            container = self.container
            if container and container not in killed:
                try:
                    self._client.kill(container)
                    killed.add(container)
                    log.info("build past its deadline: killed step container %s", container)
                except (docker.errors.APIError, *_CONNECTION_ERRORS) as exc:
                    log.debug("killing %s: %s", container, exc)
            self._done.wait(_KILL_INTERVAL)


class DockerEngine:
    """One connection to a Docker engine; base_url None means DOCKER_HOST or the local socket."""

    def __init__(self, base_url: str | None = None) -> None:
        self._base_url = base_url
        kwargs: dict[str, Any] = (
            {"base_url": base_url} if base_url else docker.utils.kwargs_from_env()
        )
        try:
            _probe(kwargs.get("base_url"))
            self._client = docker.APIClient(version="auto", timeout=_API_TIMEOUT, **kwargs)
        except (OSError, docker.errors.DockerException, *_CONNECTION_ERRORS) as exc:
            raise EngineUnreachable(
                f"{_describe(base_url)} is unreachable ({exc}); start it (e.g. "
                "`systemctl start docker`) or point DOCKER_HOST at a running engine, then "
                "push again"
            ) from None
        self._kwargs = kwargs

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> DockerEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- build -----------------------------------------------------------------------------

    def build(
        self,
        context: IO[bytes],
        *,
        what: str,
        tag: str,
        dockerfile: str,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        memory: int,
        deadline: float,
        output: Output,
        nocache: bool = False,
    ) -> str:
        """Build the tar context and tag the image; return its id. `what` names the app."""
        killer = docker.APIClient(
            version=self._client.api_version, timeout=_API_TIMEOUT, **self._kwargs
        )
        progress = _BuildProgress(_Lines(output))
        try:
            with _Watchdog(killer, deadline) as watchdog:
                try:
                    stream: Iterator[dict[str, Any]] = self._client.build(
                        fileobj=context,
                        custom_context=True,
                        tag=tag,
                        dockerfile=dockerfile,
                        buildargs=dict(buildargs),
                        labels=dict(labels),
                        container_limits={"memory": memory, "memswap": memory},
                        rm=True,
                        forcerm=True,
                        pull=False,
                        nocache=nocache,
                        decode=True,
                    )
                    for chunk in stream:
                        progress.take(chunk)
                        watchdog.container = progress.container
                        if watchdog.fired and time.monotonic() > deadline + _GIVE_UP:
                            break  # the step ignored the kill: stop reading, drop the build
                    progress.lines.flush()
                except docker.errors.APIError as exc:
                    raise self._build_refused(what, exc) from exc
                except _CONNECTION_ERRORS as exc:
                    raise BuildError(
                        f"lost {_describe(self._base_url)} while building {what} ({exc}); "
                        "check that the engine is running and push again"
                    ) from exc
        finally:
            killer.close()
        if watchdog.fired:
            raise BuildError(
                f"the build of {what} took longer than its time limit and was stopped"
                + (f" at {progress.step}" if progress.step else "")
                + "; make the build faster (cache dependencies in their own layer) or "
                "raise HOMEPORT_JOB_TIMEOUT"
            )
        if progress.failure is not None:
            raise self._build_failed(what, progress.step, progress.failure)
        if not progress.image_id:
            raise BuildError(
                f"the build of {what} ended without an image; check the engine's log and push again"
            )
        return progress.image_id

    @staticmethod
    def _build_failed(what: str, step: str, chunk: Mapping[str, Any]) -> BuildError:
        detail = chunk.get("errorDetail") or {}
        message = str(detail.get("message") or chunk.get("error") or "unknown error").strip()
        code = _EXIT_CODE.search(message)
        if code:
            return BuildError(
                f"{step or 'a step'} failed with exit code {code.group(1)} while building "
                f"{what}; fix the step and push again"
            )
        if "dockerfile parse error" in message.lower():
            return BuildError(
                f"the Dockerfile of {what} is invalid: {message}; fix it and push again"
            )
        where = f" at {step}" if step else ""
        return BuildError(
            f"building {what} failed{where}: {message}; fix the Dockerfile and push again"
        )

    @staticmethod
    def _build_refused(what: str, exc: docker.errors.APIError) -> BuildError:
        message = str(exc.explanation or exc).strip()
        if "parse error" in message.lower() or "unknown instruction" in message.lower():
            return BuildError(
                f"the Dockerfile of {what} is invalid: {message}; fix it and push again"
            )
        return BuildError(f"the Docker engine refused to build {what}: {message}")

    # -- push ------------------------------------------------------------------------------

    def remove_images(self, repository: str, removable: set[str], own_tags: set[str]) -> list[str]:
        """Untag `repository:TAG` for TAG in own_tags where the image's pushed digests are all
        in removable; return the tags.

        Layers that kept images share stay, so the build cache survives; an image never
        pushed, or still used by a container, is left alone.
        """
        removed: list[str] = []
        try:
            images = self._client.images(name=repository)
        except docker.errors.APIError as exc:
            raise BuildError(f"cannot list the local images of {repository}: {exc}") from exc
        for image in images:
            digests = {
                d.rpartition("@")[2]
                for d in image.get("RepoDigests") or []
                if d.startswith(repository + "@")
            }
            if not digests or not digests <= removable:
                continue
            for tag in image.get("RepoTags") or []:
                if not tag.startswith(repository + ":") or tag.rpartition(":")[2] not in own_tags:
                    continue
                try:
                    self._client.remove_image(tag)
                except docker.errors.APIError as exc:
                    log.info("keeping %s: %s", tag, exc)
                    continue
                removed.append(tag)
        return removed

    def push(self, repository: str, tag: str, *, output: Output) -> str:
        """Push repository:tag; return the manifest digest the registry reported."""
        ref = f"{repository}:{tag}"
        registry = repository.split("/", 1)[0]
        digest = ""
        failure: str | None = None
        last_progress: dict[str, float] = {}
        try:
            stream: Iterator[dict[str, Any]] = self._client.push(
                repository, tag=tag, stream=True, decode=True
            )
            for chunk in stream:
                if "error" in chunk:
                    # Read on to the stream's end (the error is its last message) so the
                    # connection is released rather than leaked.
                    detail = chunk.get("errorDetail") or {}
                    failure = str(detail.get("message") or chunk.get("error") or "")
                    continue
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
                    continue
                line = self._push_line(chunk, last_progress)
                if line:
                    output(line)
            if failure is not None:
                raise self._push_failed(ref, registry, failure)
        except docker.errors.APIError as exc:
            raise self._push_failed(ref, registry, str(exc.explanation or exc)) from exc
        except _CONNECTION_ERRORS as exc:
            raise RegistryError(
                f"lost {_describe(self._base_url)} while pushing {ref} ({exc}); check that "
                "the engine and the registry are running and push again"
            ) from exc
        if not digest.startswith("sha256:"):
            raise RegistryError(
                f"the registry {registry} did not report a digest for {ref}; check the "
                "registry's log and push again"
            )
        return digest

    @staticmethod
    def _push_line(chunk: Mapping[str, Any], last_progress: dict[str, float]) -> str:
        status = str(chunk.get("status") or "")
        layer = str(chunk.get("id") or "")
        if status in ("Preparing", "Waiting"):
            return ""
        if status == "Pushing":
            now = time.monotonic()
            if now - last_progress.get(layer, 0.0) < _PROGRESS_INTERVAL:
                return ""
            last_progress[layer] = now
            detail = chunk.get("progressDetail") or {}
            current, total = detail.get("current"), detail.get("total")
            if isinstance(current, int) and isinstance(total, int) and total > 0:
                status = f"Pushing {current / 1e6:.1f} MB / {total / 1e6:.1f} MB"
        if not status:
            return ""
        return f"{layer}: {status}" if layer else status

    @staticmethod
    def _push_failed(ref: str, registry: str, message: str) -> RegistryError:
        lowered = message.lower()
        if any(marker in lowered for marker in _UNREACHABLE):
            return RegistryUnreachable(
                f"the registry {registry} is unreachable ({message}); start it or set "
                "HOMEPORT_REGISTRY to a running registry, then push again"
            )
        return RegistryError(
            f"the registry {registry} refused {ref}: {message or 'no reason given'}; check "
            "its log, storage space and access rules, then push again"
        )
