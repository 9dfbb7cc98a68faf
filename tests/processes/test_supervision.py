"""`homeport up` heals what it runs and stops what it started, with one honest end per job."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gitwork import WorkTree
from tests.support.servers import Up
from tests.support.waiting import wait_until

SLOW_BUILD = """FROM homeport-base:busybox
RUN echo building && sleep 45
COPY . /www
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
SLOW_START = """FROM homeport-base:busybox
COPY . /www
CMD ["sh", "-c", "sleep 20; exec httpd -f -p 8080 -h /www"]
"""


@pytest.fixture
def up(tmp_path: Path, docker_services: str, apps_namespace: str) -> Iterator[Up]:
    """`homeport up` with its embedded Redis, deploying to the test cluster."""
    from tests.support.cluster import KUBECONFIG

    running = Up(
        tmp_path / "data",
        extra_env={"HOMEPORT_KUBECONFIG": str(KUBECONFIG), "HOMEPORT_NAMESPACE": apps_namespace},
    ).start()
    yield running
    running.stop()


def _jobs(data_dir: Path) -> list[tuple[str, str]]:
    """(status, reason) of every job, read from the database as homeport left it."""
    with sqlite3.connect(data_dir / "homeport.db") as conn:
        return list(conn.execute("SELECT status, reason FROM jobs ORDER BY created_at"))


def test_embedded_redis_killed_is_restarted_and_pushes_go_on(up: Up, work: WorkTree) -> None:
    """kill -9 of the private Redis (the OOM killer's pick): back within 2 s, pushes deploy."""
    (redis_pid,) = up.processes("redis-server")
    os.kill(redis_pid, signal.SIGKILL)
    restarted = wait_until(
        lambda: [p for p in up.processes("redis-server") if p != redis_pid],
        timeout=2.5,
        what="a new redis-server",
        interval=0.1,
    )
    assert restarted
    work.commit("one", **{"index.html": "one"})
    pushed = work.push(up.remote("blog"))
    assert pushed.returncode == 0, pushed.stderr
    assert "-----> blog v1 is live" in pushed.stderr


def test_redis_killed_mid_build_ends_the_job_honestly(up: Up, work: WorkTree) -> None:
    """Redis dies while a job builds: the job still ends once, and nothing is left queued."""
    work.commit("slow", Dockerfile=SLOW_BUILD.replace("45", "6"), **{"index.html": "one"})
    with work.push_async(up.remote("blog")) as push:
        wait_until(lambda: "building" in up.job_log("blog"), timeout=60, what="the build")
        for pid in up.processes("redis-server"):
            os.kill(pid, signal.SIGKILL)
        _, err = push.communicate(timeout=180)
    assert push.returncode == 0, err
    assert "-----> blog v1 is live" in err
    assert _jobs(up.data_dir) == [("succeeded", "")]


def test_stopping_up_mid_build_fails_the_job_and_stops_its_process(up: Up, work: WorkTree) -> None:
    """SIGTERM during a build: the push is rejected with the reason, no job process lives on."""
    work.commit("slow", Dockerfile=SLOW_BUILD, **{"index.html": "one"})
    with work.push_async(up.remote("blog")) as push:
        wait_until(lambda: "building" in up.job_log("blog"), timeout=60, what="the build")
        (job_pid,) = up.job_processes()
        assert up.stop() == 0 or up.log()
        _, err = push.communicate(timeout=60)
    assert push.returncode != 0
    assert "stopped: homeport was shut down; push again to retry" in err
    assert not Path(f"/proc/{job_pid}").exists()
    assert _jobs(up.data_dir) == [
        ("failed", "stopped: homeport was shut down; push again to retry")
    ]


def test_stopping_up_mid_rollout_settles_at_the_next_start(up: Up, work: WorkTree) -> None:
    """SIGTERM during a rollout: the job fails; the next start settles the release, pushes work."""
    work.commit("slow", Dockerfile=SLOW_START, **{"index.html": "one"})
    with work.push_async(up.remote("blog")) as push:
        wait_until(lambda: "Rolling out blog v1" in up.job_log("blog"), timeout=60, what="rollout")
        up.stop()
        _, err = push.communicate(timeout=60)
    assert push.returncode != 0 and "stopped: homeport was shut down" in err
    assert [s for s, _ in _jobs(up.data_dir)] == ["failed"]
    up.start()

    def settled() -> bool:
        releases = up.api("GET", "/api/apps/blog/releases").json()["releases"]
        return bool(releases) and all(r["status"] != "deploying" for r in releases)

    wait_until(settled, timeout=90, what="the release to be settled")
    work.commit("fast", Dockerfile=SLOW_START.replace("sleep 20; ", ""))
    pushed = work.push(up.remote("blog"))
    assert pushed.returncode == 0, pushed.stderr


def test_a_job_process_that_stops_responding_is_killed(up: Up, work: WorkTree) -> None:
    """A frozen job process (no heartbeat) is killed, its job failed, and the app goes on."""
    work.commit("slow", Dockerfile=SLOW_BUILD, **{"index.html": "one"})
    with work.push_async(up.remote("blog")) as push:
        wait_until(lambda: "building" in up.job_log("blog"), timeout=60, what="the build")
        (job_pid,) = up.job_processes()
        os.kill(job_pid, signal.SIGSTOP)  # as a C call holding the GIL would freeze it
        _, err = push.communicate(timeout=120)
    assert push.returncode != 0
    assert "stopped responding and was killed" in err
    wait_until(lambda: not Path(f"/proc/{job_pid}").exists(), timeout=10, what="the process")
    work.commit("fast", Dockerfile=SLOW_BUILD.replace("&& sleep 45", ""))
    pushed = work.push(up.remote("blog"))
    assert pushed.returncode == 0, pushed.stderr
