"""Stopping homeport is prompt and loses nothing: workers stop their job in any stage, and the
receiver tells every waiting push and follower before it goes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from homeport.lifecycle import SHUTDOWN_REASON
from tests.support.gitwork import DOCKERFILE, WorkTree
from tests.support.processes import children, descendants
from tests.support.servers import TOKEN, Homeport
from tests.support.waiting import wait_until
from tests.support.webhooks import github, payload

# What the issue asks of `homeport worker` and `homeport serve` after SIGTERM.
STOP_LIMIT = 10.0

SLOW_BUILD = """FROM homeport-base:busybox
RUN echo building-{nonce} && sleep 120
COPY . /www
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
SLOW_START = """FROM homeport-base:busybox
COPY . /www
CMD ["sh", "-c", "sleep 120; exec httpd -f -p 8080 -h /www"]
"""
SLOW_RELEASE = """[release]
command = ["sleep", "120"]
timeout = 300
"""


@contextlib.contextmanager
def stalled_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers: a hung git host or
    registry."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def _jobs(hp: Homeport) -> list[tuple[str, str]]:
    with sqlite3.connect(hp.data_dir / "homeport.db") as conn:
        return list(conn.execute("SELECT status, reason FROM jobs ORDER BY created_at"))


def _job_log(hp: Homeport, app: str) -> str:
    listed = hp.api("GET", f"/api/apps/{app}/jobs").json().get("jobs") or []
    return hp.api("GET", f"/api/apps/{app}/jobs/{listed[0]['id']}/log").text if listed else ""


def _stop_workers_timed(hp: Homeport) -> tuple[float, list[int]]:
    """Stop the workers; how long it took, and what they had started (all must be gone)."""
    started = [pid for proc in hp.workers for pid in descendants(proc.pid)]
    assert started, "no job process was running"
    began = time.monotonic()
    hp.stop_workers()
    return time.monotonic() - began, started


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start(tmp_path: Path, redis_url: str, namespace: str, **env: str) -> Homeport:
    from tests.support.cluster import KUBECONFIG

    return Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        extra_env={
            "HOMEPORT_KUBECONFIG": str(KUBECONFIG),
            "HOMEPORT_NAMESPACE": namespace,
            **env,
        },
    ).start()


@pytest.mark.parametrize(
    ("stage", "marker"),
    [
        ("build", "building-"),
        ("push", "-----> Pushing"),
        ("release command", "-----> Running the release command"),
        ("rollout", "-----> Rolling out"),
    ],
)
def test_a_stopped_worker_stops_its_pushed_job_in_each_stage(
    stage: str,
    marker: str,
    tmp_path: Path,
    redis_url: str,
    docker_services: str,
    apps_namespace: str,
) -> None:
    """SIGTERM to the workers mid-stage: gone within 10 s, with every process they started;
    the job is recorded stopped and the waiting push is rejected saying so."""
    files = {"index.html": "one", "Dockerfile": DOCKERFILE}
    if stage == "build":
        files["Dockerfile"] = SLOW_BUILD.format(nonce=time.monotonic_ns())
    elif stage == "rollout":
        files["Dockerfile"] = SLOW_START
    elif stage == "release command":
        files["homeport.toml"] = SLOW_RELEASE
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if stage == "push":
            env["HOMEPORT_REGISTRY"] = f"127.0.0.1:{stack.enter_context(stalled_server())}"
        hp = _start(tmp_path, redis_url, apps_namespace, **env)
        stack.callback(hp.stop)
        work = WorkTree(tmp_path / "work")
        work.commit(stage, **files)
        with work.push_async(hp.remote("blog")) as push:
            wait_until(lambda: marker in _job_log(hp, "blog"), timeout=120, what=stage)
            took, started = _stop_workers_timed(hp)
            _, err = push.communicate(timeout=30)
    assert took < STOP_LIMIT, f"the workers took {took:.1f}s to stop during the {stage}"
    assert not [pid for pid in started if _alive(pid)]
    assert push.returncode != 0
    assert SHUTDOWN_REASON in err
    assert _jobs(hp) == [("failed", SHUTDOWN_REASON)]


def test_a_stopped_worker_stops_a_webhook_job_mid_fetch(
    tmp_path: Path, redis_url: str, docker_services: str, apps_namespace: str
) -> None:
    """A fetch from a git host that stopped answering ends with the worker, recorded stopped."""
    with stalled_server() as port:
        hp = _start(tmp_path, redis_url, apps_namespace)
        try:
            body = json.dumps(payload(f"http://127.0.0.1:{port}/me/blog.git", "a" * 40)).encode()
            assert github(hp, body).status_code == 202
            wait_until(lambda: "-----> Fetching" in _job_log(hp, "blog"), timeout=60, what="fetch")
            took, started = _stop_workers_timed(hp)
        finally:
            hp.stop()
    assert took < STOP_LIMIT, f"the workers took {took:.1f}s to stop during the fetch"
    assert not [pid for pid in started if _alive(pid)]
    assert _jobs(hp) == [("failed", SHUTDOWN_REASON)]


def test_a_stopped_receiver_tells_waiting_pushes_and_loses_nothing(
    tmp_path: Path, redis_url: str, docker_services: str, apps_namespace: str
) -> None:
    """SIGTERM to `homeport serve` with a push and a follower waiting on a queued job: gone
    within 10 s, both told; the job stays queued and deploys once homeport is back."""
    hp = _start(tmp_path, redis_url, apps_namespace)
    try:
        hp.stop_workers()
        work = WorkTree(tmp_path / "work")
        commit = work.commit("one", **{"index.html": "one"})
        with work.push_async(hp.remote("blog")) as push:
            wait_until(lambda: _jobs(hp) == [("queued", "")], timeout=30, what="the job")
            job = hp.api("GET", "/api/apps/blog/jobs").json()["jobs"][0]["id"]
            followed: list[str] = []
            following = threading.Event()

            def follow() -> None:
                with httpx.stream(
                    "GET",
                    f"{hp.url}/api/apps/blog/jobs/{job}/log?follow=1",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=30,
                ) as answer:
                    following.set()
                    followed.extend(answer.iter_lines())

            follower = threading.Thread(target=follow)
            follower.start()
            assert following.wait(timeout=30), "the follower did not connect"
            assert hp.server is not None
            began = time.monotonic()
            hp.server.terminate()
            hp.server.wait(timeout=30)
            took = time.monotonic() - began
            follower.join(timeout=30)
            _, err = push.communicate(timeout=30)
        assert took < STOP_LIMIT, f"homeport serve took {took:.1f}s to stop"
        assert push.returncode != 0
        assert "homeport is stopping, so this stops waiting" in err
        assert "homeport stopped while the deploy was queued" in err
        assert any("homeport is stopping" in line for line in followed), followed
        assert _jobs(hp) == [("queued", "")]
        hp.server = None
        hp.start()
        done = hp.wait_job("blog", job, timeout=180)
        assert done["status"] == "succeeded", done
        assert hp.api("GET", "/api/apps/blog/releases").json()["releases"][0]["commit"] == commit
    finally:
        hp.stop()


def test_a_job_process_that_cannot_stop_is_killed_with_its_build_and_recorded(
    tmp_path: Path, redis_url: str, docker_services: str, apps_namespace: str
) -> None:
    """A frozen job process (as one stuck in a C call) gets its SIGTERM and ignores it: the
    worker kills it with its build, records the job stopped, and still ends within 10 s."""
    hp = _start(tmp_path, redis_url, apps_namespace)
    try:
        work = WorkTree(tmp_path / "work")
        work.commit("slow", Dockerfile=SLOW_BUILD.format(nonce=time.monotonic_ns()))
        with work.push_async(hp.remote("blog")) as push:
            wait_until(lambda: "building-" in _job_log(hp, "blog"), timeout=120, what="build")
            (job,) = [pid for proc in hp.workers for pid in children(proc.pid)]
            os.kill(job, signal.SIGSTOP)
            took, started = _stop_workers_timed(hp)
            _, err = push.communicate(timeout=30)
    finally:
        hp.stop()
    assert took < STOP_LIMIT, f"the workers took {took:.1f}s to stop"
    assert not [pid for pid in started if _alive(pid)]
    assert push.returncode != 0
    assert SHUTDOWN_REASON in err
    assert _jobs(hp) == [("failed", SHUTDOWN_REASON)]
