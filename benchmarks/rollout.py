"""Rollout figures on the local test cluster (prints them; not a test).

    .venv/bin/python benchmarks/rollout.py [--rounds 3]

1. crash loop: the new pod's first crash -> the old release fully serving again (target <= 15 s)
2. readiness timeout -> rollback complete (target <= 5 s)
3. homeport's deploy of an already-built image vs `kubectl set image` + `kubectl rollout status`
   of the same change in the same run (ratio target <= 1.2)

Everything runs in a namespace of its own, deleted at the end; all traffic stays on loopback.

A run on the 2-core test box (Kubernetes 1.33, probe period 1 s): crash -> restored 2.2 s
(2.9 s from the kubelet's exit time); timeout -> rolled back 0.12 s; deploy 1.04 s vs kubectl
1.03 s median over 6 rollouts each, ratio 1.01.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from homeport.deployer import deploy
from homeport.deployer.errors import ApiError, RolloutError
from homeport.deployer.kube import Kube
from homeport.deployer.objects import selector
from homeport.settings import Settings
from homeport.spec import RunSpec
from tests.deployer import images

KUBECONFIG = "/var/lib/homeport-test/cluster/admin.kubeconfig"
APP = "bench"
SPEC = RunSpec(health_path="/healthz", health_timeout=120, env={"GREETING": "bench"})


def _deploy(
    settings: Settings,
    image: str,
    spec: RunSpec = SPEC,
    emit: Callable[[str], None] | None = None,
) -> None:
    deploy.deploy(
        settings,
        app=APP,
        commit="b" * 40,
        image_ref=image,
        spec=spec,
        secret_env={},
        job_id=None,
        emit=emit or (lambda line: None),
    )


def _serving(settings: Settings, body: str) -> bool:
    with Kube(settings) as kube:
        status, got = kube.proxy_get(APP, "/")
    return status == 200 and got.decode().strip() == body


def crash_to_restored(settings: Settings, good: str, crash: str) -> tuple[float, float]:
    """Seconds from the first crash (as observed, and by the kubelet's clock) to restored."""
    _deploy(settings, good)
    stop = threading.Event()
    first: dict[str, float] = {}

    def watch() -> None:
        with Kube(settings) as kube:
            for event in kube.watch("pods", stop, selector=selector(APP)):
                for pod in event.items or [event.obj]:
                    for cs in pod.get("status", {}).get("containerStatuses") or []:
                        ended = (cs.get("state") or {}).get("terminated") or (
                            cs.get("lastState") or {}
                        ).get("terminated")
                        if ended and "seen" not in first:
                            first["seen"] = time.time()
                            finished = datetime.fromisoformat(
                                ended["finishedAt"].replace("Z", "+00:00")
                            )
                            first["kubelet"] = finished.timestamp()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        _deploy(settings, crash)
    except RolloutError:
        pass
    done = time.time()
    stop.set()
    assert _serving(settings, "release one"), "old release not serving after the rollback"
    return done - first["seen"], done - first["kubelet"]


def timeout_to_rolled_back(settings: Settings, bad: str, timeout: int) -> float:
    """Seconds from the readiness timeout (the failure line) to rollback complete."""
    failed_at: list[float] = []

    def emit(line: str) -> None:
        if " failed: " in line and not failed_at:
            failed_at.append(time.monotonic())

    try:
        _deploy(settings, bad, replace(SPEC, health_timeout=timeout), emit)
    except RolloutError:
        pass
    done = time.monotonic()
    assert _serving(settings, "release one"), "old release not serving after the rollback"
    return done - failed_at[0]


def kubectl(*args: str) -> None:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", KUBECONFIG, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")


def homeport_vs_kubectl(
    settings: Settings, one: str, two: str, rounds: int
) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    theirs: list[float] = []
    ns = settings.namespace
    for _ in range(rounds):
        for image in (two, one):
            start = time.monotonic()
            _deploy(settings, image)
            ours.append(time.monotonic() - start)
        for image in (two, one):
            start = time.monotonic()
            kubectl("-n", ns, "set", "image", f"deployment/{APP}", f"app={image}")
            kubectl("-n", ns, "rollout", "status", f"deployment/{APP}", "--timeout=180s")
            theirs.append(time.monotonic() - start)
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("building test images...", flush=True)
    one = images.build("hp-bench", "one", index="release one")
    two = images.build("hp-bench", "two", index="release two")
    crash = images.build("hp-bench", "crash", index="crash", crash=True)
    bad = images.build("hp-bench", "nohealth", index="no health", healthz=False)
    with tempfile.TemporaryDirectory() as data:
        ns = f"hp-bench-{uuid.uuid4().hex[:8]}"
        settings = Settings(namespace=ns, data_dir=Path(data), kubeconfig=KUBECONFIG)
        try:
            seen, kubelet = crash_to_restored(settings, one, crash)
            print(
                f"crash loop: first crash -> old release serving: {seen:.1f} s after it was"
                f" observed, {kubelet:.1f} s after the kubelet's exit time (target <= 15 s)"
            )
            for timeout in (10,):
                took = timeout_to_rolled_back(settings, bad, timeout)
                print(
                    f"readiness timeout ({timeout} s) -> rollback complete: {took:.2f} s"
                    " (target <= 5 s)"
                )
            ours, theirs = homeport_vs_kubectl(settings, one, two, args.rounds)
            mine, base = statistics.median(ours), statistics.median(theirs)
            print(
                f"deploy of a built image: homeport median {mine:.2f} s"
                f" ({', '.join(f'{t:.2f}' for t in ours)})"
            )
            print(
                f"kubectl set image + rollout status: median {base:.2f} s"
                f" ({', '.join(f'{t:.2f}' for t in theirs)})"
            )
            print(f"ratio homeport / kubectl: {mine / base:.2f} (target <= 1.2)")
        finally:
            with Kube(settings) as kube:
                try:
                    kube.request("DELETE", f"/api/v1/namespaces/{ns}")
                except ApiError:
                    pass


if __name__ == "__main__":
    main()
