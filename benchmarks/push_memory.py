"""Memory of a push of one 200 MB compressible file: receiving it, then building it.

Receiver: peak RSS (VmHWM) of `homeport serve` while it receives the push (to a branch that
does not deploy), against the same process idle just before; git index-pack, its child, is
sampled every 5 ms. Job: peak RSS of a job-like process that builds the commit's context
(and then builds and pushes the image with the Docker engine, if the services are up),
against the same process after its imports; git cat-file, its child, is reported too.
Targets: receiver <= 150 MB and job <= 150 MB while building the context.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from common import ROOT, Homeport, git, scratch, start_redis

from tests.support.registry import delete_repository
from tests.support.servers import children

SIZE = 200 * 1024**2
TARGET_MB = 150


def _status_mb(pid: int, field: str) -> float:
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class _ChildPeak:
    """Samples the RSS of a process's children until stopped; keeps the highest."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(0.005):
            for child in children(self.pid):
                try:
                    self.peak = max(self.peak, _status_mb(child, "VmRSS"))
                except OSError:
                    pass

    def __enter__(self) -> _ChildPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


# Runs in its own process so its peak RSS is the job's alone.
_JOB = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from homeport.builder.build import build_and_push
from homeport.builder.context import spool_context
from homeport.git.commits import CommitTree
from homeport.manifest import Manifest

def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

repo, commit, docker = Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
result = {"imports": hwm()}
start = time.perf_counter()
with CommitTree(repo, commit, max_blob_bytes=256 * 1024**2) as tree:
    with spool_context(tree, dockerfile="Dockerfile", max_bytes=1024**3) as context:
        context.seek(0, 2)
        result["context_bytes"] = context.tell()
result["context_s"] = time.perf_counter() - start
result["context"] = hwm()
result["git"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
if docker:
    start = time.perf_counter()
    build_and_push(
        repo_path=repo, app=sys.argv[5], commit=commit, manifest=Manifest(),
        registry="127.0.0.1:5000", build_memory=256 * 1024**2, build_cache=5 * 1024**3,
        min_free_disk=2 * 1024**3, timeout=600,
        emit=lambda line: None, max_blob_bytes=256 * 1024**2, max_context_bytes=1024**3,
    )
    result["build_s"] = time.perf_counter() - start
    result["build"] = hwm()
print(json.dumps(result))
"""


def _docker_up() -> bool:
    found = subprocess.run(
        ["docker", "image", "inspect", "homeport-base:busybox"], capture_output=True
    )
    return found.returncode == 0


def main() -> None:
    work = scratch("bigfile")
    src = work / "src"
    src.mkdir()
    git("init", "-q", "-b", "main", cwd=src)
    (src / "Dockerfile").write_text("FROM homeport-base:busybox\nCOPY big.bin /big.bin\n")
    with (src / "big.bin").open("wb") as out:
        chunk = b"\0" * (1024**2)
        for _ in range(SIZE // len(chunk)):
            out.write(chunk)
    git("add", "-A", cwd=src)
    git("commit", "-qm", "big", cwd=src)
    commit = git("rev-parse", "HEAD", cwd=src)

    redis = start_redis(work / "redis")
    hp = Homeport(data_dir=work / "data", redis_url=redis.url).start(workers=0)
    try:
        assert hp.server is not None
        time.sleep(1)  # let start-up allocations settle before the idle figure
        idle = _status_mb(hp.server.pid, "VmHWM")
        started = time.perf_counter()
        with _ChildPeak(hp.server.pid) as git_peak:
            git("push", "-q", hp.remote("bigfile"), "main:feature", cwd=src)
        push_s = time.perf_counter() - started
        receiver = _status_mb(hp.server.pid, "VmHWM")
    finally:
        hp.stop()
        redis.stop()
    bare = work / "data" / "repos" / "bigfile.git"
    docker = _docker_up()
    app = f"bench-{uuid.uuid4().hex[:8]}"
    job = json.loads(
        subprocess.run(
            [sys.executable, "-c", _JOB, str(ROOT), str(bare), commit, "1" if docker else "0", app],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    shutil.rmtree(work, ignore_errors=True)
    if docker:
        delete_repository(app)
        subprocess.run(
            ["docker", "image", "rm", "-f", f"127.0.0.1:5000/{app}:{commit[:12]}"],
            capture_output=True,
        )

    rows = [
        (f"push of one {SIZE // 1024**2} MB file of zeros ({push_s:.1f} s)", None),
        ("  receiver idle (baseline)", idle),
        (f"  receiver peak while receiving (target <= {TARGET_MB})", receiver),
        ("  git index-pack peak (sampled)", git_peak.peak),
        (f"build context of that commit ({job['context_s']:.1f} s)", None),
        ("  job process after imports (baseline)", job["imports"]),
        (f"  job process peak, context step (target <= {TARGET_MB})", job["context"]),
        ("  git cat-file peak", job["git"]),
    ]
    if docker:
        rows.append((f"  job process peak, build and push ({job['build_s']:.1f} s)", job["build"]))
    for label, value in rows:
        print(label if value is None else f"{label + ':':58} {value:6.1f} MB")
    if not docker:
        print("  (Docker engine or base image missing: build and push not measured)")


if __name__ == "__main__":
    main()
