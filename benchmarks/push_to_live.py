"""Push-to-live time of the example blog on a warm cache, split by stage.

Stages are timed on the client as the push output arrives (receive, queue wait, build,
push, rollout), and the pods' own start (scheduled to ready) is read from the cluster.
homeport's overhead is everything except build, push and the pods' start.
Target: overhead <= 1 s. Needs the test cluster (tests/cluster/up).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from pathlib import Path

from common import ROOT, on_test_cluster, scratch

from tests.support.cluster import cluster_client, delete_namespace
from tests.support.gitwork import WorkTree

ROUNDS = 3
MARKS = {
    "queued": "-----> Queued deploy",
    "build": "-----> Building",
    "push": "-----> Pushing",
    "rollout": "-----> Rolling out",
    "live": " is live",
}


def _pod_start_seconds(namespace: str, version: int) -> float:
    kube = cluster_client()
    pods = kube.core.list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/name=blog,homeport.dev/release={version}"
    )
    for pod in pods.items:
        conditions = {c.type: c.last_transition_time for c in pod.status.conditions or []}
        if "PodScheduled" in conditions and "Ready" in conditions:
            return float((conditions["Ready"] - conditions["PodScheduled"]).total_seconds())
    return 0.0


def _one_push(work: WorkTree, remote: str) -> dict[str, float]:
    start = time.monotonic()
    seen: dict[str, float] = {}
    with subprocess.Popen(
        ["git", "push", remote, "main"],
        cwd=work.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as push:
        assert push.stderr is not None
        for line in push.stderr:
            for name, marker in MARKS.items():
                if marker in line and name not in seen:
                    seen[name] = time.monotonic() - start
    seen["end"] = time.monotonic() - start
    if push.returncode != 0 or len(seen) != len(MARKS) + 1:
        raise SystemExit(f"push failed or was not recognised: {seen}")
    return seen


def main() -> None:
    work_dir = scratch("live")
    hp, redis, namespace = on_test_cluster(work_dir, workers=2)
    rows = []
    try:
        work = WorkTree(Path(work_dir / "blog"), dockerfile=None)
        shutil.copytree(ROOT / "examples" / "blog", work.path, dirs_exist_ok=True)
        manifest = (work.path / "homeport.toml").read_text()
        (work.path / "homeport.toml").write_text(
            '[build]\nargs = { BASE = "homeport-base:busybox" }\n' + manifest
        )
        for version in range(1, ROUNDS + 2):
            work.write("www/index.html", f"<h1>post {version}</h1>\n")
            work.commit(f"post {version}")
            marks = _one_push(work, hp.remote("blog"))
            if version == 1:
                continue  # the first push warms the build cache and makes the objects
            pods = _pod_start_seconds(namespace, version)
            rows.append(
                {
                    "receive": marks["queued"],
                    "queue wait": marks["build"] - marks["queued"],
                    "build": marks["push"] - marks["build"],
                    "push": marks["rollout"] - marks["push"],
                    "rollout": marks["live"] - marks["rollout"],
                    "pods start": pods,
                    "after live": marks["end"] - marks["live"],
                    "total": marks["end"],
                }
            )
    finally:
        hp.stop()
        redis.stop()
        delete_namespace(namespace)
    median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    overhead = median["total"] - median["build"] - median["push"] - median["pods start"]
    print(f"push-to-live of examples/blog, warm cache, median of {len(rows)}:")
    for key, value in median.items():
        print(f"  {key:11s} {value:6.2f} s")
    print(
        f"  overhead    {overhead:6.2f} s = {overhead / median['total']:.0%} of the whole "
        "(target <= 1 s)"
    )


if __name__ == "__main__":
    main()
