"""`homeport jobs`: a job's output, its record, and the exit code of a followed job."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from homeport.records import joblog, jobs
from tests.support.cli import run_cli as _cli
from tests.support.records import queued_job, seed_app
from tests.support.servers import Homeport


def _job(data_dir: Path, app: str, status: str, line: str) -> str:
    """A job of app with one line of output, left in `status`."""
    job = queued_job(data_dir, app)
    joblog.JobLog(joblog.log_path(data_dir, app, job.id)).write(line)
    if status != jobs.QUEUED:
        jobs.finish(data_dir, job.id, status, "readiness probe failed")
    return job.id


def test_following_a_failed_job_exits_1(receiver: Homeport) -> None:
    """`jobs APP -f` and `jobs APP JOB -f` exit 1 when the job failed, 0 when it succeeded."""
    (first,) = seed_app(receiver.data_dir, "blog", 1)
    failed = _job(receiver.data_dir, "blog", jobs.FAILED, "-----> blog v2 failed: no probe")
    newest = _cli(receiver, "jobs", "blog", "-f")
    assert (newest.returncode, newest.stdout) == (1, "-----> blog v2 failed: no probe\n")
    named = _cli(receiver, "jobs", "blog", failed, "--follow")
    assert (named.returncode, named.stdout) == (1, newest.stdout)
    assert first.job_id is not None
    succeeded = _cli(receiver, "jobs", "blog", first.job_id, "-f")
    assert succeeded.returncode == 0 and "blog v1 is live" in succeeded.stdout
    # Without -f it only shows the output so far: showing it worked.
    assert _cli(receiver, "jobs", "blog", failed).returncode == 0


def test_jobs_json_prints_the_job(receiver: Homeport) -> None:
    """`jobs APP JOB --json` is the job's record; with -f, once the job ended, and its code."""
    seed_app(receiver.data_dir, "blog", 1)
    failed = _job(receiver.data_dir, "blog", jobs.FAILED, "-----> blog v2 failed: no probe")
    shown = _cli(receiver, "jobs", "blog", failed, "--json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert (record["id"], record["status"]) == (failed, "failed")
    followed = _cli(receiver, "jobs", "blog", "-f", "--json")
    assert followed.returncode == 1
    assert json.loads(followed.stdout) == record


def test_a_job_still_queued_when_the_follow_ends_exits_1_saying_so(
    start_receiver: Callable[..., Homeport],
) -> None:
    """A followed job that has not ended when the wait does is exit 1 and one line on it."""
    # A 1 s job timeout: the log follow gives up after it plus a margin of 5 s.
    receiver = start_receiver(HOMEPORT_JOB_TIMEOUT="1")
    seed_app(receiver.data_dir, "blog", 1)
    waiting = _job(receiver.data_dir, "blog", jobs.QUEUED, "-----> Queued")
    followed = _cli(receiver, "jobs", "blog", "-f")
    assert followed.returncode == 1
    assert followed.stderr == (
        f"homeport: job {waiting} of blog is still queued; follow it again with"
        f" homeport jobs blog {waiting} -f\n"
    )
