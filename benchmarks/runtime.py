"""`homeport run` and `homeport logs -f` against kubectl in the same run (prints figures).

    .venv/bin/python benchmarks/runtime.py [--rounds 6] [--lines 20]

1. Round trip of `homeport run APP -- true` (CLI start to exit: the pod created, started,
   its output streamed, its exit code read, the pod removed) vs
   `kubectl run --rm -i --restart=Never` of the same image and command. Target ratio <= 1.2.
2. Latency from a line the app writes to `homeport logs -f` printing it vs `kubectl logs -f`,
   both following the same pod at once; the write time is the container runtime's timestamp
   of the line. p95 over --lines lines. Target ratio <= 1.2.

Needs the test cluster (tests/cluster/up); everything runs in a namespace of its own,
deleted at the end, and all traffic stays on loopback.

Runs on the 2-core test box under a load average of 15 (Kubernetes 1.33): run round trip,
median of 6, 2.15 s vs kubectl 3.08 s (ratio 0.70) and 3.14 s vs 3.23 s (0.97) in two runs;
`kubectl run --rm` waits for the pod's deletion, homeport deletes it with no grace period
once the exit code is read and does not wait, and kubectl without waiting took 3.66 s.
Log latency p95 over 20 lines, median of 5 measurements: 12 ms vs 12 ms (ratio 0.97); one
measurement's ratio ranged from 0.87 to 1.83 (its p95 is its slowest line but one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from common import Homeport, on_test_cluster, scratch

from tests.support.cluster import KUBECONFIG, delete_namespace
from tests.support.gitwork import WorkTree
from tests.support.servers import TOKEN

# The app ticks a numbered line every 0.3 s next to the httpd its readiness check needs.
DOCKERFILE = """FROM homeport-base:busybox
COPY . /www
RUN ["/bin/busybox", "ln", "-s", "busybox", "/bin/true"]
CMD ["sh", "-c", "httpd -p 8080 -h /www; i=0; while true; do i=$((i+1)); echo tick-$i; {pause}"]
""".replace("{pause}", "sleep 0.3; done")
APP = "bench"


def _env(hp: Homeport) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_URL=hp.url, HOMEPORT_TOKEN=TOKEN, KUBECONFIG=str(KUBECONFIG))
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr}")
    return took


def _kubectl_run(namespace: str, name: str, image: str, rm: bool) -> list[str]:
    return [
        "kubectl", "-n", namespace, "run", name, *(["--rm"] if rm else []), "-i", "--quiet",
        "--restart=Never", f"--image={image}", "--command", "--", "true",
    ]  # fmt: skip


def round_trips(hp: Homeport, namespace: str, image: str, rounds: int) -> None:
    env = _env(hp)
    times: dict[str, list[float]] = {"homeport": [], "rm": [], "nowait": []}
    for i in range(rounds):
        # Rotate which goes first, so none always meets a warmer cluster.
        order = ["homeport", "rm", "nowait"][i % 3 :] + ["homeport", "rm", "nowait"][: i % 3]
        for name in order:
            if name == "homeport":
                cmd = [sys.executable, "-m", "homeport", "run", APP, "--", "true"]
                times[name].append(_timed(cmd, env))
            elif name == "rm":
                times[name].append(_timed(_kubectl_run(namespace, f"rm-{i}", image, True), env))
            else:
                # The same without waiting for the deletion, as homeport does not wait.
                start = time.perf_counter()
                _timed(_kubectl_run(namespace, f"nowait-{i}", image, False), env)
                delete = ["kubectl", "-n", namespace, "delete", "pod", f"nowait-{i}"]
                _timed([*delete, "--wait=false", "--grace-period=0"], env)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(found) for name, found in times.items()}
    print(f"run round trip, median of {rounds}:")
    for name, label in (
        ("homeport", "homeport run -- true"),
        ("rm", "kubectl run --rm -i"),
        ("nowait", "kubectl run -i; delete --wait=false"),
    ):
        each = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"  {label:38} {medians[name]:.2f} s  ({each})")
    ratio = medians["homeport"] / medians["rm"]
    print(f"  ratio to kubectl run --rm -i {ratio:.2f} (target <= 1.2)")
    print(f"  ratio to kubectl without waiting {medians['homeport'] / medians['nowait']:.2f}")


class Follower:
    """A following command whose tick lines are timed as they arrive."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.seen: dict[int, float] = {}
        self.stamps: dict[int, float] = {}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.time()
            if "tick-" not in line:
                continue
            number = int(line.rsplit("tick-", 1)[1].strip())
            self.seen.setdefault(number, now)
            stamp = line.split()[0]
            self.stamps.setdefault(number, _epoch(stamp))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _epoch(stamp: str) -> float:
    """Seconds of an RFC 3339 timestamp with up to nanoseconds."""
    base, _, fraction = stamp.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(base + "+00:00").timestamp()
    return whole + (float("0." + fraction) if fraction else 0.0)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def log_latency(hp: Homeport, namespace: str, lines: int) -> tuple[float, float]:
    env = _env(hp)
    pod = subprocess.run(
        [
            "kubectl",
            "-n",
            namespace,
            "get",
            "pods",
            "-l",
            f"app.kubernetes.io/name={APP}",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    theirs = Follower(
        ["kubectl", "-n", namespace, "logs", "-f", "--timestamps", "--tail=0", pod], env
    )
    ours = Follower([sys.executable, "-m", "homeport", "logs", APP, "-f", "--tail", "0"], env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            both = sorted(set(theirs.seen) & set(ours.seen))
            if len(both) >= lines + 2:
                break
            time.sleep(0.2)
        # The first two lines may have been caught mid-start by one of them: skip them.
        both = sorted(set(theirs.seen) & set(ours.seen))[2 : lines + 2]
        if len(both) < lines:
            raise SystemExit(f"only {len(both)} lines reached both followers in 120 s")
        written = {n: theirs.stamps[n] for n in both}
        ours_lat = [ours.seen[n] - written[n] for n in both]
        theirs_lat = [theirs.seen[n] - written[n] for n in both]
    finally:
        ours.stop()
        theirs.stop()
    p_ours, p_theirs = _p95(ours_lat), _p95(theirs_lat)
    print(
        f"log line latency, write -> printed, p95 over {len(both)} lines (both following at once):"
    )
    for name, p95, lat in (("homeport", p_ours, ours_lat), ("kubectl ", p_theirs, theirs_lat)):
        median = statistics.median(lat) * 1000
        print(f"  {name} logs -f   p95 {p95 * 1000:.0f} ms, median {median:.0f} ms")
    print(f"  ratio of p95 {p_ours / p_theirs:.2f} (target <= 1.2)")
    return p_ours, p_theirs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="log latency measurements")
    args = parser.parse_args()
    if not 0 <= args.rounds <= 50 or not 5 <= args.lines <= 200 or not 0 <= args.repeat <= 10:
        raise SystemExit("--rounds 0..50, --lines 5..200, --repeat 0..10")
    work_dir = scratch("runtime")
    hp, redis, namespace = on_test_cluster(work_dir, workers=1)
    try:
        work = WorkTree(Path(work_dir / APP), dockerfile=None)
        work.commit("bench", Dockerfile=DOCKERFILE, **{"index.html": "bench\n"})
        pushed = work.push(hp.remote(APP))
        if pushed.returncode != 0:
            raise SystemExit(f"push failed: {pushed.stderr}")
        image = hp.api("GET", f"/api/apps/{APP}/releases").json()["releases"][0]["image"]
        if args.rounds:
            round_trips(hp, namespace, image, args.rounds)
        measured = [log_latency(hp, namespace, args.lines) for _ in range(args.repeat)]
        if len(measured) > 1:
            ours = statistics.median(m[0] for m in measured)
            theirs = statistics.median(m[1] for m in measured)
            print(f"log latency p95, median of {len(measured)} measurements of {args.lines} lines:")
            print(
                f"  homeport {ours * 1000:.0f} ms, kubectl {theirs * 1000:.0f} ms,"
                f" ratio {ours / theirs:.2f} (target <= 1.2)"
            )
    finally:
        hp.stop()
        redis.stop()
        delete_namespace(namespace)


if __name__ == "__main__":
    main()
