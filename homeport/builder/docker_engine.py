"""The Docker engine adapter: the only module that imports `docker`.

Checks that the engine answers, finds its data root for the disk guard and removes old
images; builds go through BuildKit (buildkit.py). Turns docker and requests errors into
BuildError with messages a pushing user can act on.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

from homeport.builder.errors import BuildError, EngineUnreachable

log = logging.getLogger(__name__)

# Socket timeout of each request: an engine that says nothing for this long is treated as
# unreachable.
_API_TIMEOUT = 120


def _sdk() -> Any:
    """The docker SDK, imported on first use: it brings requests and urllib3 (~0.2 s), and
    the receiver and the CLI import the builder's modules without ever talking to an engine."""
    import docker

    return docker


def _refused() -> type[BaseException]:
    """The engine's error answer (a 4xx or 5xx), evaluated only when an exception is raised."""
    import docker.errors

    return docker.errors.APIError  # type: ignore[no-any-return]


def _api_errors() -> tuple[type[BaseException], ...]:
    """The engine's error answers and the ways its connection fails.

    Only evaluated when an exception is raised, so it never loads the SDK itself.
    """
    import docker.errors
    import requests.exceptions
    import urllib3.exceptions

    return (
        docker.errors.APIError,
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


class DockerEngine:
    """One connection to a Docker engine; base_url None means DOCKER_HOST or the local socket."""

    def __init__(self, base_url: str | None = None) -> None:
        self._base_url = base_url
        docker = _sdk()
        kwargs: dict[str, Any] = (
            {"base_url": base_url} if base_url else docker.utils.kwargs_from_env()
        )
        try:
            _probe(kwargs.get("base_url"))
            self._client = docker.APIClient(version="auto", timeout=_API_TIMEOUT, **kwargs)
        except (OSError, docker.errors.DockerException, *_api_errors()) as exc:
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

    # -- disk ------------------------------------------------------------------------------

    def local_data_root(self) -> Path | None:
        """The engine's data root (DockerRootDir) when it is on this machine, else None."""
        url = self._kwargs.get("base_url") or "unix:///var/run/docker.sock"
        if not url.startswith(("unix://", "http+unix://")):
            return None
        try:
            root = Path(str(self._client.info().get("DockerRootDir") or ""))
        except _api_errors() as exc:
            raise EngineUnreachable(
                f"{_describe(self._base_url)} did not answer ({exc}); check that it is running "
                "and push again"
            ) from exc
        # A socket forwarded from another machine names a directory that is not here.
        return root if root.is_absolute() and root.is_dir() else None

    # -- images ----------------------------------------------------------------------------

    def remove_images(self, repository: str, removable: set[str], own_tags: set[str]) -> list[str]:
        """Untag `repository:TAG` for TAG in own_tags where the image's pushed digests are all
        in removable; return the tags.

        Layers that kept images share stay, so the build cache survives; an image never
        pushed, or still used by a container, is left alone.
        """
        removed: list[str] = []
        try:
            images = self._client.images(name=repository)
        except _refused() as exc:
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
                except _refused() as exc:
                    log.info("keeping %s: %s", tag, exc)
                    continue
                removed.append(tag)
        return removed
