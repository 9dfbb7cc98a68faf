"""Build an app's image from a pushed commit and push it to the registry."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from homeport.builder.context import has_file, spool_context
from homeport.builder.docker_engine import DockerEngine
from homeport.builder.errors import BuildError
from homeport.commits import CommitTree
from homeport.manifest import Manifest

log = logging.getLogger(__name__)

INDENT = " " * 7
REVISION_LABEL = "org.opencontainers.image.revision"
SOURCE_LABEL = "org.opencontainers.image.source"


@dataclass(frozen=True)
class BuiltImage:
    """An image in the registry."""

    repository: str
    """Registry and name, e.g. 127.0.0.1:5000/blog."""
    tag: str
    """Full tag reference, e.g. 127.0.0.1:5000/blog:1a2b3c4d5e6f."""
    digest: str
    """Manifest digest, e.g. sha256:..."""

    @property
    def ref(self) -> str:
        """Reference by digest, what the deployer deploys: 127.0.0.1:5000/blog@sha256:..."""
        return f"{self.repository}@{self.digest}"


def image_tag(commit: str) -> str:
    """The tag homeport gives the image of a commit."""
    return commit[:12]


def build_and_push(
    *,
    repo_path: Path,
    app: str,
    commit: str,
    manifest: Manifest,
    registry: str,
    build_memory: int,
    timeout: float,
    emit: Callable[[str], None],
    max_blob_bytes: int,
    max_context_bytes: int,
    docker_host: str | None = None,
    nocache: bool = False,
) -> BuiltImage:
    """Build the commit's image and push it; return where it is.

    `timeout` bounds the build in seconds: a build still running then is stopped and nothing
    is pushed. `emit` gets each output line as it happens. A file over `max_blob_bytes` or a
    context over `max_context_bytes` fails the build before the engine sees it.
    `docker_host` overrides DOCKER_HOST.
    Raises BuildError, TreeError or RegistryError; on any, nothing was pushed by this call.
    """
    deadline = time.monotonic() + timeout
    repository = f"{registry}/{app}"
    tag = image_tag(commit)
    ref = f"{repository}:{tag}"
    dockerfile = manifest.build.dockerfile
    what = f"app '{app}'"

    emit(f"-----> Building {app}@{commit[:7]}")
    with CommitTree(repo_path, commit, max_blob_bytes=max_blob_bytes) as tree:
        if not has_file(tree, dockerfile):
            if dockerfile == "Dockerfile":
                raise BuildError(
                    f"{what} has no Dockerfile at the repository root; add one or set "
                    "[build] dockerfile in homeport.toml"
                )
            raise BuildError(
                f"{what} has no Dockerfile at {dockerfile} (set by [build] dockerfile in "
                "homeport.toml); add it or fix the path"
            )
        context = spool_context(tree, dockerfile=dockerfile, max_bytes=max_context_bytes)

    def indented(line: str) -> None:
        emit(INDENT + line)

    with context, DockerEngine(docker_host) as engine:
        started = time.monotonic()
        engine.build(
            context,
            what=what,
            tag=ref,
            dockerfile=dockerfile,
            buildargs=manifest.build.args,
            labels={REVISION_LABEL: commit, SOURCE_LABEL: app},
            memory=build_memory,
            deadline=deadline,
            output=indented,
            nocache=nocache,
        )
        log.info("built %s in %.1f s", ref, time.monotonic() - started)
        emit(f"-----> Pushing {ref}")
        digest = engine.push(repository, tag, output=indented)
    emit(f"       Pushed {repository}@{digest}")
    return BuiltImage(repository=repository, tag=ref, digest=digest)


def remove_old_images(
    registry: str,
    app: str,
    removable: set[str],
    own_tags: set[str],
    docker_host: str | None = None,
) -> list[str]:
    """Untag the engine's images of the app that homeport pushed and no longer keeps.

    Every build leaves an image in the engine; without this a homelab disk fills up. Only
    tags in `own_tags` on images whose pushed digests are all in `removable` go: images and
    tags that other tools put under the same name stay.
    """
    with DockerEngine(docker_host) as engine:
        return engine.remove_images(f"{registry}/{app}", removable, own_tags)
