"""Build an app's image from a pushed commit and push it to the registry."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from homeport.builder import buildkit
from homeport.builder.context import has_file, spool_context
from homeport.builder.disk import ensure_free
from homeport.builder.docker_engine import DockerEngine
from homeport.builder.errors import BuildError
from homeport.git.commits import CommitTree
from homeport.manifest import BuildConfig, Manifest

log = logging.getLogger(__name__)

INDENT = " " * 7
REVISION_LABEL = "org.opencontainers.image.revision"
SOURCE_LABEL = "org.opencontainers.image.source"
# Where a Dockerfile from outside [build] context goes in the context sent to the engine: a
# tar context can only name a Dockerfile inside it.
OUTSIDE_DOCKERFILE = ".homeport.Dockerfile"
# Seconds between two prunes of the build cache down to HOMEPORT_BUILD_CACHE.
PRUNE_EVERY = 300


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
    build_cache: int,
    min_free_disk: int,
    timeout: float,
    emit: Callable[[str], None],
    max_blob_bytes: int,
    max_context_bytes: int,
    secrets: Mapping[str, str] | None = None,
    docker_host: str | None = None,
    nocache: bool = False,
    pruned_stamp: Path | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> BuiltImage:
    """Build the commit's image with BuildKit and push it; return where it is.

    `timeout` bounds the build in seconds: a build still running then is stopped and nothing
    is pushed. `emit` gets each output line as it happens. A file over `max_blob_bytes` or a
    context over `max_context_bytes` fails the build before the engine sees it. `secrets`
    holds the app config values [build] secrets may name. Before the build, the engine's
    disk must have `min_free_disk` free (after pruning, if need be); after it, the BuildKit
    cache is pruned to `build_cache` bytes, at most every PRUNE_EVERY seconds when
    `pruned_stamp` names the file that remembers the last prune. `docker_host` overrides
    DOCKER_HOST. `cancelled`, asked during the build, stops it with BuildCancelled.
    Raises BuildError, TreeError or RegistryError; on any, nothing was pushed by this call.
    """
    deadline = time.monotonic() + timeout
    repository = f"{registry}/{app}"
    tag = image_tag(commit)
    ref = f"{repository}:{tag}"
    what = f"app '{app}'"
    config = manifest.build

    emit(f"-----> Building {app}@{commit[:7]}")
    given = secrets or {}
    missing = [name for name in config.secrets if name not in given]
    if missing:
        raise BuildError(
            f"{what} names {', '.join(missing)} in [build] secrets of homeport.toml, but "
            f"{'it is' if len(missing) == 1 else 'they are'} not set; set "
            f"{'it' if len(missing) == 1 else 'them'} with `homeport config set {app} "
            f"{missing[0]}=...` or remove {'it' if len(missing) == 1 else 'them'} from "
            "[build] secrets, then push again"
        )
    build_secrets = {name: given[name] for name in config.secrets}

    def indented(line: str) -> None:
        emit(INDENT + line)

    def pushing() -> None:
        emit(f"-----> Pushing {ref}")

    with DockerEngine(docker_host) as engine:
        ensure_free(engine, min_free=min_free_disk, docker_host=docker_host, emit=emit)
    context, dockerfile = _context(
        repo_path, commit, what, config, max_blob_bytes, max_context_bytes
    )
    with context:
        started = time.monotonic()
        digest = buildkit.build(
            context,
            what=what,
            ref=ref,
            dockerfile=dockerfile,
            target=config.target,
            buildargs=config.args,
            labels={REVISION_LABEL: commit, SOURCE_LABEL: app},
            secrets=build_secrets,
            memory=build_memory,
            deadline=deadline,
            output=indented,
            pushing=pushing,
            nocache=nocache,
            docker_host=docker_host,
            cancelled=cancelled,
        )
    log.info("built and pushed %s in %.1f s", ref, time.monotonic() - started)
    emit(f"       Pushed {repository}@{digest}")
    if pruned_stamp is None or prune_due(pruned_stamp):
        buildkit.prune(build_cache, docker_host, wait=False)
    return BuiltImage(repository=repository, tag=ref, digest=digest)


def prune_due(stamp: Path, every: float = PRUNE_EVERY) -> bool:
    """Whether the last prune (the stamp's time) is over `every` seconds old; if so, restamp.

    A prune walks the whole cache and costs the engine about half a CPU second: after every
    build of a burst of pushes that is a fifth of the machine. The cap is a bound on disk,
    and the free-disk guard before each build covers a cache that grows in between.
    """
    try:
        if time.time() - stamp.stat().st_mtime < every:
            return False
    except FileNotFoundError:
        pass
    try:
        stamp.touch()
        os.utime(stamp)
    except OSError:
        pass  # an unwritable data dir only means pruning after every build, as before
    return True


def _context(
    repo_path: Path,
    commit: str,
    what: str,
    config: BuildConfig,
    max_blob_bytes: int,
    max_context_bytes: int,
) -> tuple[IO[bytes], str]:
    """The build context as a tar, and the Dockerfile's path inside it."""
    root = config.context
    prefix = "" if root == "." else root + "/"
    path = config.dockerfile_path
    with CommitTree(repo_path, commit, max_blob_bytes=max_blob_bytes) as tree:
        if root != ".":
            entry = tree.lookup(root)
            if entry is None or not entry.is_dir:
                kind = "no directory" if entry is None or not entry.is_symlink else "a symlink"
                raise BuildError(
                    f"{what} has {kind} at {root} (set by [build] context in homeport.toml); "
                    "name a directory of the repository"
                )
        if not has_file(tree, path):
            if path == "Dockerfile":
                raise BuildError(
                    f"{what} has no Dockerfile at the repository root; add one or set "
                    "[build] dockerfile in homeport.toml"
                )
            raise BuildError(
                f"{what} has no Dockerfile at {path} (set by [build] dockerfile and context in "
                "homeport.toml); add it or fix the path"
            )
        if path.startswith(prefix):
            inside = path[len(prefix) :]
            tar = spool_context(tree, dockerfile=inside, max_bytes=max_context_bytes, root=root)
            return tar, inside
        entry = tree.lookup(path)
        if entry is None or entry.is_symlink or tree.lookup(prefix + OUTSIDE_DOCKERFILE):
            raise BuildError(
                f"the Dockerfile of {what} at {path} is outside [build] context ({root}) and "
                f"is a symlink, or the context already has a {OUTSIDE_DOCKERFILE}; move the "
                "Dockerfile into the context or make it a regular file"
            )
        tar = spool_context(
            tree,
            dockerfile=OUTSIDE_DOCKERFILE,
            max_bytes=max_context_bytes,
            root=root,
            extra=(OUTSIDE_DOCKERFILE, entry),
        )
        return tar, OUTSIDE_DOCKERFILE


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
