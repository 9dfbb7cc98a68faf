"""Drain time of a burst of pushes: 10 apps x 3 pushes each, 2 workers, on the test cluster.

    .venv/bin/python benchmarks/burst_drain.py [--apps 10] [--pushes 3] [--singles 3]
        [--workers 2] [--timeline] [--env HOMEPORT_X=VALUE]

Each app's commits 1, 2, 3 are pushed in quick succession (each once the previous one is
queued), all apps at once, every push a real `git push` waiting for its deploy. Drain time
runs from the first push to the moment every job has ended. Baseline in the same run: each
app's single deploy (one commit of one app, nothing else queued; median of --singles), and
ideal = sum of the apps' single deploys / workers. Target: drain / ideal <= 1.3.

Checked and printed: every app serves its last commit (read through the cluster's service
proxy), no job is left queued or running, and how the jobs ended. A push whose deploy was
superseded by a newer one is rejected by git (`deploy superseded`); that is expected.
To say where the time goes it also prints each stage's median in a single deploy and in
the burst, queue waits, how long 0, 1, 2 jobs ran at once, and the CPU used by homeport,
by the Docker, registry and cluster daemons and by the whole machine (--timeline: every
push). Everything runs in a namespace of its own, deleted at the end. Needs the test cluster.

Seven runs in a row on the quiet 2-core test box: single deploy 1.9 s, ideal 9.5-10.1 s,
drain 10.7-12.8 s, ratio 1.24, 1.16, 1.19, 1.07, 1.33, 1.18, 1.26 (median 1.19); 10 jobs
succeeded, 20 superseded (14 ran, 4 of them stopped once built), every app serving its last
commit. Runs made while a prune of a cache filled by earlier test builds ran beside the burst
measured 1.47-1.56: the engine's cache is pruned first now, as on a server whose next prune
is minutes away. A deploy costs the machine about 1.4 CPU seconds (0.4 of them homeport's,
the rest Docker's, the registry's and the cluster's); on two cores, two deploys at once
start their pods in 1.4-1.8 s instead of 0.6-1.0 s, which is most of what is left.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import Homeport, scratch, start_redis

from homeport.builder import buildkit
from homeport.settings import Settings
from tests.support.cluster import (
    KUBECONFIG,
    base_image,
    cluster_client,
    delete_namespace,
    service_proxy_get,
)
from tests.support.gitwork import WorkTree

# Bounds for the loops below: a burst on the 2-core test box drains in about a minute.
PUSH_TIMEOUT = 600
QUEUED_TIMEOUT = 60
MARKS = {
    "queued": "-----> Queued deploy",
    "build": "-----> Building",
    "push": "-----> Pushing",
    "rollout": "-----> Rolling out",
    "live": " is live",
}

# Stages between the marks: the job's own times (started, ended) and the lines git prints.
STAGES = {
    "claim": ("started", "build"),
    "build": ("build", "push"),
    "push": ("push", "rollout"),
    "rollout": ("rollout", "live"),
    "finish": ("live", "ended"),
}


@dataclass
class Push:
    """One `git push` of one commit, its output lines timed as they arrive."""

    app: str
    commit: str
    number: int
    started: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    stderr: list[str] = field(default_factory=list)
    returncode: int | None = None
    queued: threading.Event = field(default_factory=threading.Event)
    job: dict[str, Any] = field(default_factory=dict)

    @property
    def took(self) -> float:
        """From the push's start to its job's end."""
        return float(self.job["ended_at"]) - self.started

    def run(self, work: WorkTree, remote: str) -> None:
        self.started = time.time()
        with subprocess.Popen(
            ["git", "push", remote, f"{self.commit}:refs/heads/main"],
            cwd=work.path,
            env=work.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a kill reaches git's remote helper, which holds stderr
        ) as proc:
            assert proc.stderr is not None
            # Bounded: a push still running after PUSH_TIMEOUT is killed, ending its output.
            timer = threading.Timer(PUSH_TIMEOUT, os.killpg, (proc.pid, signal.SIGKILL))
            timer.start()
            try:
                for line in proc.stderr:
                    self.stderr.append(line.rstrip())
                    for name, marker in MARKS.items():
                        if marker in line and name not in self.marks:
                            self.marks[name] = time.time()
                            if name == "queued":
                                self.queued.set()
            finally:
                timer.cancel()
        self.returncode = proc.returncode
        self.queued.set()  # a push that failed before queueing must not hold up the next

    @property
    def outcome(self) -> str:
        if self.returncode == 0:
            return "live"
        if any("deploy superseded" in line for line in self.stderr):
            return "superseded"
        return "failed"


def _page(app: str, number: int) -> str:
    return f"<h1>{app} commit {number}</h1>\n"


def _commit(work: WorkTree, app: str, number: int) -> str:
    work.write("index.html", _page(app, number))
    return work.commit(f"commit {number}")


def _jobs(hp: Homeport, app: str) -> list[dict[str, Any]]:
    answer = hp.api("GET", f"/api/apps/{app}/jobs")
    answer.raise_for_status()
    return list(answer.json()["jobs"])


def _job_of(hp: Homeport, push: Push) -> dict[str, Any]:
    return next(j for j in _jobs(hp, push.app) if j["commit"] == push.commit)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process and its ended children (job processes) so far."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _homeport_cpu(hp: Homeport) -> tuple[float, float]:
    """CPU seconds so far of the receiver, and of the workers with their job processes."""
    assert hp.server is not None
    return _cpu_seconds(hp.server.pid), sum(_cpu_seconds(w.pid) for w in hp.workers)


# The daemons a deploy uses besides homeport: Docker, the registry, the cluster.
INFRA = ("dockerd", "containerd", "docker-registry", "etcd", "kubelet", "kube-")


def _infra_cpu() -> float:
    """CPU seconds so far of the Docker, registry and cluster daemons (whoever uses them)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            if name.startswith(INFRA):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue  # it ended meanwhile
    return total


def _box_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (all processes, all cores)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    rate = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / rate, sum(ticks) / rate


class Usage:
    """CPU used while a block runs: homeport's processes, the daemons, the whole machine."""

    def __init__(self, hp: Homeport) -> None:
        self.hp = hp
        self.receiver = self.workers = self.daemons = self.busy = 0.0

    def _now(self) -> tuple[float, ...]:
        return (*_homeport_cpu(self.hp), _infra_cpu(), *_box_busy())

    def __enter__(self) -> Usage:
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        delta = [b - a for a, b in zip(self._start, self._now(), strict=True)]
        self.receiver, self.workers, self.daemons = delta[:3]
        self.busy = delta[3] / max(delta[4], 1e-9)


def _pruned_just_now(data_dir: Path) -> None:
    """Prune the engine's build cache now and stamp it in the new data dir, as a server that
    has been up a while stands: its next prune is minutes away. A fresh data dir would prune
    at its first build, and a prune of a cache that earlier test builds filled runs beside
    the burst for a minute."""
    buildkit.prune(Settings().build_cache, wait=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "build-cache.pruned").touch()


def _single(hp: Homeport, work: WorkTree, app: str, number: int) -> Push:
    """Deploy one commit of one app with nothing else queued."""
    push = Push(app, _commit(work, app, number), number)
    push.run(work, hp.remote(app))
    if push.returncode != 0:
        raise SystemExit(f"single deploy of {app} failed:\n" + "\n".join(push.stderr))
    push.job = _job_of(hp, push)
    return push


def _burst_app(
    hp: Homeport, work: WorkTree, pushes: list[Push], threads: list[threading.Thread]
) -> None:
    """Start the app's pushes in order, each once the one before is queued."""
    for push in pushes:
        thread = threading.Thread(target=push.run, args=(work, hp.remote(push.app)))
        thread.start()
        threads.append(thread)
        if not push.queued.wait(QUEUED_TIMEOUT):
            raise SystemExit(f"push {push.number} of {push.app} was not queued")


def _stage_medians(pushes: list[Push]) -> dict[str, float]:
    """Median seconds of each stage over the pushes whose job ran, as their client saw it."""
    found: dict[str, list[float]] = {name: [] for name in ("job run", *STAGES)}
    for push in pushes:
        if not push.job.get("started_at") or "live" not in push.marks:
            continue
        marks = {**push.marks, "started": push.job["started_at"], "ended": push.job["ended_at"]}
        for name, (start, end) in STAGES.items():
            found[name].append(float(marks[end]) - float(marks[start]))
        found["job run"].append(float(marks["ended"]) - float(marks["started"]))
    return {name: statistics.median(v) for name, v in found.items() if v}


def _busy_intervals(jobs: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [
        (float(j["started_at"]), float(j["ended_at"]))
        for j in jobs
        if j["started_at"] is not None and j["ended_at"] is not None
    ]


def _concurrency(
    intervals: list[tuple[float, float]], start: float, end: float
) -> dict[int, float]:
    """Seconds spent with 0, 1, 2, ... jobs running between start and end."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    spent: dict[int, float] = {}
    running, last = 0, start
    for moment, step in events:
        moment = min(max(moment, start), end)
        spent[running] = spent.get(running, 0.0) + moment - last
        running, last = running + step, moment
    spent[running] = spent.get(running, 0.0) + end - last
    return dict(sorted(spent.items()))


def _print_timeline(pushes: list[Push], jobs: list[dict[str, Any]], t0: float) -> None:
    """Seconds from the first push: push start, queued line, job created, started, ended."""
    print("  push             start queued created started  ended  status")
    for push, job in sorted(zip(pushes, jobs, strict=True), key=lambda pair: pair[0].started):

        def at(moment: float | None) -> str:
            return f"{moment - t0:7.2f}" if moment is not None else "      -"

        print(
            f"  {push.app[-8:]} #{push.number}  {at(push.started)}{at(push.marks.get('queued'))}"
            f"{at(job['created_at'])}{at(job['started_at'])}{at(job['ended_at'])}  {job['status']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--pushes", type=int, default=3)
    parser.add_argument("--singles", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeline", action="store_true", help="print every push's times")
    parser.add_argument(
        "--env", action="append", default=[], metavar="HOMEPORT_X=VALUE", help="a setting to try"
    )
    args = parser.parse_args()
    if not 1 <= args.apps * args.pushes <= 30:
        raise SystemExit("at most 30 concurrent pushes (--apps x --pushes)")

    base_image()
    work_dir = scratch("drain")
    run = uuid.uuid4().hex[:6]
    namespace = f"hp-bench-{run}"
    names = [f"drain-{run}-{i}" for i in range(args.apps)]
    redis = start_redis(work_dir / "redis")
    _pruned_just_now(work_dir / "data")
    hp = Homeport(
        data_dir=work_dir / "data",
        redis_url=redis.url,
        extra_env={
            "HOMEPORT_KUBECONFIG": str(KUBECONFIG),
            "HOMEPORT_NAMESPACE": namespace,
            **dict(pair.split("=", 1) for pair in args.env),
        },
    ).start(workers=args.workers)
    try:
        trees = {app: WorkTree(work_dir / app) for app in names}
        # The first deploy creates the app and warms the build cache; it is not timed.
        singles: dict[str, list[Push]] = {app: [] for app in names}
        for app in names:
            _single(hp, trees[app], app, 0)
        with Usage(hp) as single_use:
            for round_ in range(args.singles):
                for app in names:
                    singles[app].append(_single(hp, trees[app], app, round_ + 1))
        per_app = {app: statistics.median(p.took for p in done) for app, done in singles.items()}
        ideal = sum(per_app.values()) / args.workers

        first = args.singles + 1
        bursts = {
            app: [
                Push(app, _commit(trees[app], app, n), n) for n in range(first, first + args.pushes)
            ]
            for app in names
        }
        threads: list[threading.Thread] = []
        starters = [
            threading.Thread(target=_burst_app, args=(hp, trees[app], bursts[app], threads))
            for app in names
        ]
        with Usage(hp) as burst_use:
            for starter in starters:
                starter.start()
            for starter in starters:
                starter.join()
            for thread in threads:
                thread.join(PUSH_TIMEOUT)
        pushes = [push for app in names for push in bursts[app]]
        for push in pushes:
            push.job = _job_of(hp, push)
        burst_jobs = [push.job for push in pushes]
        left = [j for j in burst_jobs if j["status"] in ("queued", "running")]
        t0 = min(push.started for push in pushes)
        ended = max(float(j["ended_at"]) for j in burst_jobs if j["ended_at"] is not None)
        drain = ended - t0

        kube = cluster_client()
        serving = {}
        for app in names:
            status, body = service_proxy_get(kube, namespace, app)
            serving[app] = status == 200 and body == _page(app, bursts[app][-1].number)
        statuses = Counter(j["status"] for j in burst_jobs)
        outcomes = Counter(push.outcome for push in pushes)
        stages = _stage_medians(pushes)
        single_stages = _stage_medians([p for done in singles.values() for p in done])
        ran = [j for j in burst_jobs if j["started_at"] is not None]
        waits = [float(j["started_at"]) - float(j["created_at"]) for j in ran]
        runs = [float(j["ended_at"]) - float(j["started_at"]) for j in ran if j["ended_at"]]
        stopped = sum(1 for j in ran if j["status"] == "superseded")
        busy = _concurrency(_busy_intervals(burst_jobs), t0, ended)
    finally:
        hp.stop()
        redis.stop()
        delete_namespace(namespace)

    single = statistics.median(per_app.values())
    print(
        f"burst of {args.apps} apps x {args.pushes} pushes on {args.workers} workers "
        f"({len(pushes)} concurrent git pushes):"
    )
    print(
        f"  single deploy     {single:6.2f} s  (median per app over {args.singles}; "
        f"apps {min(per_app.values()):.2f}-{max(per_app.values()):.2f} s)"
    )
    print(f"  ideal             {ideal:6.2f} s  (sum of the apps' single deploys / {args.workers})")
    print(f"  drain             {drain:6.2f} s  (first push to the last job's end)")
    print(f"  ratio             {drain / ideal:6.2f}    (target <= 1.3)")
    print(
        f"  jobs              {len(burst_jobs)}: {statuses['succeeded']} succeeded, "
        f"{statuses['superseded']} superseded ({stopped} after their build), "
        f"{statuses['failed']} failed; {len(left)} left queued or running"
    )
    print(
        "  git pushes        "
        + ", ".join(f"{outcomes[o]} {o}" for o in ("live", "superseded", "failed"))
    )
    print(f"  apps serving their last commit: {sum(serving.values())} of {len(names)}")
    print(f"  jobs run          {len(runs)}, {sum(runs):.1f} s of worker time")
    print(f"  queue wait        median {statistics.median(waits):.2f} s, max {max(waits):.2f} s")
    print("  stages            single |  burst  (median over the deploys that went live)")
    for name, seconds in single_stages.items():
        print(f"    {name:13s} {seconds:6.2f} s | {stages.get(name, 0.0):5.2f} s")
    deploys = args.apps * args.singles
    print(
        f"  homeport CPU      receiver {single_use.receiver / deploys:.2f} s + workers "
        f"{single_use.workers / deploys:.2f} s per single deploy; burst: receiver "
        f"{burst_use.receiver:.2f} s + workers {burst_use.workers:.2f} s for {len(runs)} jobs run"
    )
    print(
        f"  daemons CPU       {single_use.daemons / deploys:.2f} s per single deploy; burst "
        f"{burst_use.daemons:.2f} s (Docker, registry, cluster; other users included)"
    )
    print(
        f"  machine CPU busy  {single_use.busy:.0%} during the single deploys, "
        f"{burst_use.busy:.0%} during the burst ({os.cpu_count()} cores, other load included)"
    )
    print(
        "  time with N jobs running: "
        + ", ".join(f"{n}: {seconds:.1f} s" for n, seconds in busy.items())
    )
    if args.timeline:
        _print_timeline(pushes, burst_jobs, t0)
    failed = [p for p in pushes if p.outcome == "failed"]
    for push in failed[:3]:
        print(f"  failed push {push.app} #{push.number}: {push.stderr[-1:] or '(no output)'}")
    if left or failed or not all(serving.values()):
        raise SystemExit("the burst did not drain cleanly")


if __name__ == "__main__":
    main()
