"""Helpers shared by the benchmark scripts (they print figures; they are not tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from homeport.processes.redis import EmbeddedRedis  # noqa: E402
from tests.support.servers import Homeport, start_redis  # noqa: E402

__all__ = ["ROOT", "Homeport", "need", "rss_mb", "scratch", "start_redis", "timed"]


def need(tool: str, package: str) -> str:
    """The tool's path, installing its Debian package when missing."""
    found = shutil.which(tool)
    if found:
        return found
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        stdout=subprocess.DEVNULL,
    )
    found = shutil.which(tool)
    if not found:
        raise SystemExit(f"{tool} is not available; install the {package} package")
    return found


def scratch(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"homeport-bench-{prefix}-"))


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB (VmRSS)."""
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(cmd: list[str], **kwargs: object) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - start


def git(*args: str, cwd: Path) -> str:
    """Run git in cwd as the benchmarks' author; its output, stripped."""
    out = subprocess.run(
        ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def on_test_cluster(work_dir: Path, workers: int = 2) -> tuple[Homeport, EmbeddedRedis, str]:
    """homeport (receiver and workers, a Redis of its own) deploying into a fresh namespace of
    the test cluster: (homeport, its Redis, the namespace), for the caller to stop and delete."""
    from tests.support.cluster import KUBECONFIG

    namespace = f"hp-bench-{uuid.uuid4().hex[:6]}"
    redis = start_redis(work_dir / "redis")
    hp = Homeport(
        data_dir=work_dir / "data",
        redis_url=redis.url,
        extra_env={"HOMEPORT_KUBECONFIG": str(KUBECONFIG), "HOMEPORT_NAMESPACE": namespace},
    ).start(workers=workers)
    return hp, redis, namespace
