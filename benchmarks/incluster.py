"""homeport installed from deploy/ (tests/incluster/up) against `homeport up`, same cluster.

Prints the time of tests/incluster/up on an installed homeport (warm), the images' sizes, the
pods' memory at idle, and push-to-live of the example blog through the installed homeport and
through a `homeport up` on this machine, in the same run: median of 3 warm pushes each.
Needs the test cluster (tests/cluster/up); leaves the install in place (tests/incluster/down
removes it).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from common import ROOT, on_test_cluster, scratch

from tests.support.cluster import KUBECONFIG, delete_namespace
from tests.support.gitwork import WorkTree

HERE = ROOT / "tests" / "incluster"
ROUNDS = 3
MIB = 1024 * 1024


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=1800).stdout


def _kubectl(*args: str) -> str:
    return _run("kubectl", "--kubeconfig", str(KUBECONFIG), *args)


def _working_set(pod: dict[str, Any]) -> dict[str, float]:
    """Each container's memory as the kubelet counts it (usage less inactive file), in MiB."""
    qos = pod["status"]["qosClass"].lower()
    found = {}
    for status in pod["status"]["containerStatuses"]:
        cid = status["containerID"].rpartition("/")[2]
        cgroup = Path(f"/sys/fs/cgroup/memory/kubepods/{qos}/pod{pod['metadata']['uid']}/{cid}")
        usage = int((cgroup / "memory.usage_in_bytes").read_text())
        stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
        found[status["name"]] = (usage - int(stat.get("total_inactive_file", 0))) / MIB
    return found


def _push_seconds(work: WorkTree, remote: str) -> float:
    start = time.monotonic()
    pushed = work.push(remote)
    if pushed.returncode != 0 or " is live" not in pushed.stderr:
        raise SystemExit(f"push failed: {pushed.stderr[-2000:]}")
    return time.monotonic() - start


def _blog(path: Path) -> WorkTree:
    work = WorkTree(path, dockerfile=None)
    shutil.copytree(ROOT / "examples" / "blog", work.path, dirs_exist_ok=True)
    manifest = (work.path / "homeport.toml").read_text()
    (work.path / "homeport.toml").write_text(
        '[build]\nargs = { BASE = "homeport-base:busybox" }\n' + manifest
    )
    return work


def _push_to_live(work: WorkTree, remote: str) -> list[float]:
    times = []
    for version in range(ROUNDS + 1):
        work.write("www/index.html", f"<h1>post {version}</h1>\n")
        work.commit(f"post {version}")
        seconds = _push_seconds(work, remote)
        if version:  # the first push makes the objects and warms the build cache
            times.append(seconds)
    return times


def main() -> None:
    start = time.monotonic()
    url = _run(str(HERE / "up")).strip().splitlines()[-1]
    up_seconds = time.monotonic() - start
    token = _run(str(HERE / "token")).strip()
    print(f"tests/incluster/up on an installed homeport: {up_seconds:.1f} s")

    print("images:")
    for line in _run(str(HERE / "images")).splitlines():
        name, _, image = line.partition("=")
        size = json.loads(_run("docker", "image", "inspect", image))[0]["Size"]
        print(f"  {name:10s} {size / 1e6:6.0f} MB  {image}")
    homeport = _kubectl(
        "-n", "homeport", "get", "deployment", "homeport", "-o", "jsonpath={..image}"
    )
    for image in sorted(set(homeport.split())):
        size = json.loads(_run("docker", "image", "inspect", image))[0]["Size"]
        print(f"  {'homeport':10s} {size / 1e6:6.0f} MB  {image}")

    # Idle: nothing pushed for a while; the pods have settled since up.
    time.sleep(10)
    pods = json.loads(_kubectl("-n", "homeport", "get", "pods", "-o", "json"))["items"]
    print("memory at idle (working set, MiB):")
    for pod in pods:
        sets = _working_set(pod)
        detail = ", ".join(f"{k} {v:.0f}" for k, v in sets.items())
        print(f"  {pod['metadata']['labels']['app.kubernetes.io/name']:18s} "
              f"{sum(sets.values()):6.0f}  ({detail})")  # fmt: skip

    work_dir = scratch("incluster")
    app = f"bench-{uuid.uuid4().hex[:6]}"
    installed = _push_to_live(
        _blog(work_dir / "installed"), f"{url.replace('://', f'://git:{token}@')}/git/{app}.git"
    )

    hp, redis, namespace = on_test_cluster(work_dir, workers=2)
    try:
        local = _push_to_live(_blog(work_dir / "local"), hp.remote(app))
    finally:
        hp.stop()
        redis.stop()
        delete_namespace(namespace)
    print(f"push-to-live of examples/blog, warm, median of {ROUNDS} (min-max):")
    for name, times in (("installed from deploy/", installed), ("homeport up", local)):
        print(f"  {name:22s} {statistics.median(times):5.2f} s ({min(times):.2f}-{max(times):.2f})")


if __name__ == "__main__":
    main()
