"""The disk guard: a build starts only with room to finish on the engine's data root.

Builds fill disks with cache and images; the most reported failure of self-hosted deployers
is a disk that filled silently and broke everything on the machine, not just the build.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from homeport.builder import buildkit
from homeport.builder.docker_engine import DockerEngine
from homeport.builder.errors import DiskFull
from homeport.settings import show_size


def ensure_free(
    engine: DockerEngine,
    *,
    min_free: int,
    docker_host: str | None,
    emit: Callable[[str], None],
) -> None:
    """Prune the unused build cache when the data root is short of min_free; then refuse.

    An engine on another machine is not checked: its disk is not ours to measure.
    """
    root = engine.local_data_root()
    if root is None:
        return
    free = shutil.disk_usage(root).free
    if free >= min_free:
        return
    emit(
        f"-----> Only {show_size(free)} free on {root}, under HOMEPORT_MIN_FREE_DISK "
        f"({show_size(min_free)}); pruning the build cache"
    )
    # Dropping the cache costs the next builds time; a full disk breaks the whole machine.
    buildkit.prune(0, docker_host)
    free = shutil.disk_usage(root).free
    if free >= min_free:
        return
    raise DiskFull(
        f"only {show_size(free)} is free on {root} (the Docker engine's data root), under "
        f"HOMEPORT_MIN_FREE_DISK ({show_size(min_free)}), even after pruning the build cache; "
        "free space there (`docker system df` shows what uses it, `docker image prune -a` "
        "removes images no container uses, `docker builder prune -a` the whole build cache) "
        "or lower HOMEPORT_MIN_FREE_DISK, then push again"
    )
