"""A worker killed mid-rollout: the job fails with a reason, nothing stays stuck."""

from __future__ import annotations

import os
import signal

from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport, children
from tests.support.waiting import wait_until

SLOW_START = """FROM homeport-base:busybox
COPY . /www
CMD ["sh", "-c", "sleep 12; exec httpd -f -p 8080 -h /www"]
"""


def _wait_for(hp: Homeport, app: str, text: str, timeout: float = 120) -> str:
    def logged() -> str | None:
        jobs = hp.api("GET", f"/api/apps/{app}/jobs").json().get("jobs") or []
        if jobs and text in hp.api("GET", f"/api/apps/{app}/jobs/{jobs[0]['id']}/log").text:
            return str(jobs[0]["id"])
        return None

    found: str = wait_until(logged, timeout=timeout, what=f"{text!r} in the log of {app}")
    return found


def test_worker_killed_mid_rollout_is_recovered(homeport: Homeport, work: WorkTree) -> None:
    """kill -9 of the workers mid-rollout: the job fails, the release settles, pushes go on."""
    work.commit("slow", Dockerfile=SLOW_START, **{"index.html": "slow"})
    with work.push_async(homeport.remote("blog")) as push:
        job_id = _wait_for(homeport, "blog", "-----> Rolling out blog v1")
        for worker in homeport.workers:
            for pid in [worker.pid, *children(worker.pid)]:
                os.kill(pid, signal.SIGKILL)
        for worker in homeport.workers:
            worker.wait()
        homeport.workers = []
        homeport.start_workers(2)
        _, err = push.communicate(timeout=120)
    assert push.returncode != 0
    assert "the worker stopped while this job ran" in err
    job = homeport.api("GET", f"/api/apps/blog/jobs/{job_id}").json()
    assert job["status"] == "failed"

    def settled() -> bool:
        listed = homeport.api("GET", "/api/apps/blog/releases").json()["releases"]
        return bool(listed) and all(r["status"] != "deploying" for r in listed)

    wait_until(settled, timeout=60, what="no release left deploying")
    work.commit("fast", Dockerfile=SLOW_START.replace("sleep 12; ", ""))
    pushed = work.push(homeport.remote("blog"))
    assert pushed.returncode == 0, pushed.stderr
    assert "is live" in pushed.stderr
