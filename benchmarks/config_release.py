"""Config releases and release commands against kubectl doing the same, in the same run.

    .venv/bin/python benchmarks/config_release.py [--rounds 3]

1. config release: `homeport config set` (API, queue, worker, new Secret, rollout; the CLI
   returns when the new pods serve) vs `kubectl set env` + `kubectl rollout status` of one
   env variable on the same Deployment (ratio target <= 1.2).
2. release command: the Job created -> finished, as homeport runs and follows it, vs
   `kubectl run --rm -i --restart=Never` of the same command from the same image (ratio
   target <= 1.2).

On the quiet 2-core test box, 9 rounds, three runs: config release through the CLI 1.09,
1.10 and 1.06 s against kubectl's 0.98, 0.94 and 0.89 s, ratios 1.11, 1.17 and 1.19; through
the API alone 1.05 s; release command 0.91 s against `kubectl run` 2.14 s, ratio 0.42. What is left
of homeport's own cost (about 0.15 s): the CLI's start, storing the change in the config
Secret, the queue hop to a worker, the release's records. Some rounds on either side take
one or two seconds more: a new pod's first readiness probe can come before the app listens,
and a pod that names a Secret created a moment before can wait for the node to be allowed
to read it ("failed to sync secret cache"), which a `kubectl set env` never meets; a config
release needs a new Secret, so its rounds meet it more often (3 of 9 against 1 of 9).

Rounds alternate homeport and kubectl so that both see the same load. Everything runs in a
namespace of its own, deleted at the end; all traffic stays on loopback. Needs the test
cluster (tests/cluster/up), Docker and the local registry.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import Homeport, on_test_cluster, scratch

from homeport.deployer import release_command
from homeport.deployer.kube import Kube
from homeport.release import Release
from homeport.settings import Settings
from homeport.spec import RunSpec
from tests.support.cluster import KUBECONFIG, delete_namespace
from tests.support.gitwork import WorkTree
from tests.support.servers import TOKEN

DOCKERFILE = """FROM homeport-base:busybox
COPY . /www
CMD ["sh", "-c", "echo \\"$GREETING\\" > /www/env.txt; exec httpd -f -p 8080 -h /www"]
"""
MANIFEST = '[healthcheck]\npath = "/index.html"\ntimeout = 120\n'
COMMAND = ("sh", "-c", "echo migrating; echo done")
ENV_SECRET = "bench-env"  # the name of an empty Secret, not a secret


def _kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(KUBECONFIG), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _cli(hp: Homeport, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_URL=hp.url, HOMEPORT_TOKEN=TOKEN)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "homeport", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    took = time.monotonic() - start
    if done.returncode != 0 or " is live" not in done.stdout:
        raise SystemExit(f"homeport {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return took


def config_releases(
    hp: Homeport, app: str, namespace: str, rounds: int, api: list[float]
) -> tuple[list[float], list[float]]:
    """CLI rounds and kubectl rounds; `api` gets the same change made through the API alone
    (no CLI process, no log following), to show what the CLI adds."""
    ours: list[float] = []
    theirs: list[float] = []
    for i in range(rounds):
        ours.append(_cli(hp, "config", "set", app, f"GREETING=homeport-{i}"))
        start = time.monotonic()
        answer = hp.api("POST", f"/api/apps/{app}/config", json={"set": {"GREETING": f"api-{i}"}})
        job = hp.wait_job(app, answer.json()["job"], timeout=300)
        if job["status"] != "succeeded":
            raise SystemExit(f"the config release through the API failed: {job}")
        api.append(time.monotonic() - start)
        start = time.monotonic()
        _kubectl("-n", namespace, "set", "env", f"deployment/{app}", f"BENCH=kubectl-{i}")
        _kubectl("-n", namespace, "rollout", "status", f"deployment/{app}", "--timeout=180s")
        theirs.append(time.monotonic() - start)
    return ours, theirs


def release_commands(
    settings: Settings, image: str, rounds: int
) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    theirs: list[float] = []
    spec = RunSpec(release_command=COMMAND, release_timeout=120)
    with Kube(settings) as kube:
        kube.create(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": ENV_SECRET}, "data": {}}
        )
    for i in range(rounds):
        release = Release(
            app="bench",
            version=i + 1,
            commit="b" * 40,
            image=image,
            config={},
            status="deploying",
            reason="",
            created_at=0.0,
            updated_at=0.0,
        )
        lines: list[str] = []
        start = time.monotonic()
        outcome = release_command.run(
            settings, release, spec, secret_name=ENV_SECRET, emit=lines.append
        )
        ours.append(time.monotonic() - start)
        if not isinstance(outcome, release_command.Ran) or "       done" not in lines:
            raise SystemExit(f"the release command failed: {outcome} {lines}")
        start = time.monotonic()
        done = _kubectl(
            "-n",
            settings.namespace,
            "run",
            f"bench-run-{i}",
            "--rm",
            "-i",
            "--restart=Never",
            f"--image={image}",
            "--image-pull-policy=IfNotPresent",
            "--command",
            "--",
            *COMMAND,
        )
        theirs.append(time.monotonic() - start)
        if "done" not in done.stdout:
            raise SystemExit(f"kubectl run printed no output: {done.stdout!r}")
    return ours, theirs


def _report(what: str, base: str, ours: list[float], theirs: list[float]) -> None:
    mine, other = statistics.median(ours), statistics.median(theirs)
    print(f"{what}: homeport median {mine:.2f} s ({', '.join(f'{t:.2f}' for t in ours)})")
    print(f"{base}: median {other:.2f} s ({', '.join(f'{t:.2f}' for t in theirs)})")
    print(f"ratio homeport / kubectl: {mine / other:.2f} (target <= 1.2)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work_dir = scratch("config")
    app = f"cfgbench{uuid.uuid4().hex[:6]}"
    hp, redis, namespace = on_test_cluster(work_dir, workers=2)
    try:
        work = WorkTree(Path(work_dir / "app"), dockerfile=DOCKERFILE)
        work.write("index.html", "bench\n")
        work.write("homeport.toml", MANIFEST)
        work.commit("bench")
        pushed = work.push(hp.remote(app))
        if pushed.returncode != 0:
            raise SystemExit(f"the first push failed:\n{pushed.stderr}")
        image = hp.api("GET", f"/api/apps/{app}/releases").json()["releases"][0]["image"]
        api: list[float] = []
        ours, theirs = config_releases(hp, app, namespace, args.rounds, api)
        _report(
            "config release (config set -> new pods serving)",
            "kubectl set env + rollout status",
            ours,
            theirs,
        )
        print(
            f"the same through the API (POST -> job ended): median {statistics.median(api):.2f} s"
            f" ({', '.join(f'{t:.2f}' for t in api)}), ratio"
            f" {statistics.median(api) / statistics.median(theirs):.2f}",
            flush=True,
        )
        settings = Settings(
            namespace=namespace, data_dir=work_dir / "jobs", kubeconfig=str(KUBECONFIG)
        )
        ours, theirs = release_commands(settings, image, args.rounds)
        _report(
            "release command (Job created -> finished)",
            "kubectl run --rm --restart=Never",
            ours,
            theirs,
        )
    finally:
        hp.stop()
        redis.stop()
        delete_namespace(namespace)


if __name__ == "__main__":
    main()
