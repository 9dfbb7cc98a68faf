"""Workers run homeport's deploy runner and nothing else anyone puts on the queue."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from rq import Callback, Queue, Repeat, Retry, Webhook
from rq.job import Job as RqJob
from rq.serializers import JSONSerializer

from homeport.lifecycle import queue
from homeport.processes import worker
from homeport.records import db, jobs
from homeport.settings import Settings
from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport
from tests.support.waiting import wait_until


class _Gadget:
    """Unpickling this runs a shell command: what a pickled job can do to a worker."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return (os.system, (self.command,))


def _touch(path: Path) -> str:
    return f"touch {path}"


def _attacks(conn: redis.Redis, proof: Path) -> dict[str, str]:
    """Jobs someone who can reach Redis puts on homeport's queue; returns name -> rq job id."""
    pickled = Queue(queue.QUEUE_NAME, connection=conn)  # rq's default: pickle
    as_json = Queue(queue.QUEUE_NAME, connection=conn, serializer=JSONSerializer)
    made = {
        "pickled os.system": pickled.enqueue("os.system", _touch(proof)).id,
        "json os.system": as_json.enqueue("os.system", _touch(proof)).id,
        "bogus function": as_json.enqueue("homeport.no_such_module.run", "blog").id,
        "bad app name": as_json.enqueue(worker.RUNNER, "../blog").id,
        "runner with a callback": as_json.enqueue(
            worker.RUNNER, "blog", on_failure=Callback("os.system")
        ).id,
        "runner with webhooks": as_json.enqueue(
            worker.RUNNER, "blog", webhooks=[Webhook("http://127.0.0.1:9/", "failed")]
        ).id,
        "runner with retries": as_json.enqueue(worker.RUNNER, "blog", retry=Retry(max=3)).id,
        "runner with repeats": as_json.enqueue(worker.RUNNER, "blog", repeat=Repeat(times=3)).id,
    }
    # A pickle that runs its command as it is loaded, in the call and in the fields rq
    # deserializes when it reads a job record (meta, result).
    gadget = pickle.dumps(_Gadget(_touch(proof)))
    planted = as_json.enqueue(worker.RUNNER, "blog")
    conn.hset(planted.key, mapping={"data": zlib.compress(gadget), "meta": gadget})
    made["pickle gadget"] = planted.id
    broken = as_json.enqueue(worker.RUNNER, "blog")
    conn.hset(broken.key, mapping={"status": "no-such-status", "result": gadget})
    made["unreadable record"] = broken.id
    return made


def _status(conn: redis.Redis, rq_id: str) -> str:
    value = conn.hget(f"rq:job:{rq_id}", "status")
    return value.decode() if value else ""


def _failed_registry(conn: redis.Redis) -> set[str]:
    return {m.decode() for m in conn.zrange(f"rq:failed:{queue.QUEUE_NAME}", 0, -1)}


def test_worker_refuses_foreign_jobs_and_runs_homeports(tmp_path: Path, redis_url: str) -> None:
    """Pickled, foreign and malformed jobs run nothing and are refused; the runner still runs."""
    proof = tmp_path / "pwned"
    conn = redis.Redis.from_url(redis_url)
    attacks = _attacks(conn, proof)
    # homeport's own job, queued after the attacks: its app has nothing queued, so the
    # runner claims nothing and returns, and rq records it finished.
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_url)
    db.init(settings.data_dir)
    app = f"app-{uuid.uuid4().hex[:8]}"
    queue.enqueue_runner(settings, conn, app)  # no job recorded: only a runner
    ours = conn.get(f"homeport:runner:{app}")
    assert ours is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_DATA_DIR=str(settings.data_dir), HOMEPORT_REDIS_URL=redis_url)
    result = subprocess.run(
        [sys.executable, "-m", "homeport", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert not proof.exists(), "a foreign job ran code in the worker"
    for name, rq_id in attacks.items():
        assert _status(conn, rq_id) == "failed", name
        assert f"refused queued job {rq_id}" in result.stderr, name
    assert attacks.keys() and set(attacks.values()) <= _failed_registry(conn)
    assert "'os.system' is not homeport.pipeline.run_app" in result.stderr
    assert "not JSON (homeport never queues pickled jobs)" in result.stderr
    assert "it has a failure callback" in result.stderr
    assert "it has webhooks" in result.stderr
    assert "it has retries" in result.stderr
    assert "it has repeats" in result.stderr
    assert "unreadable" in result.stderr
    assert "Traceback" not in result.stderr
    refused = RqJob.fetch(attacks["json os.system"], connection=conn, serializer=JSONSerializer)
    outcome = refused.latest_result()
    assert outcome is not None and outcome.exc_string is not None
    assert outcome.exc_string.startswith("refused by homeport: function 'os.system'")
    assert _status(conn, ours.decode()) == "finished"
    # Nothing is left for rq's maintenance to fail a second time.
    assert conn.llen(f"rq:queue:{queue.QUEUE_NAME}") == 0
    assert conn.llen(f"rq:queue:{queue.QUEUE_NAME}:intermediate") == 0


def test_homeport_queues_jobs_as_json(tmp_path: Path, redis_url: str) -> None:
    """A queued runner is stored as JSON naming run_app and the app, never as a pickle."""
    settings = Settings(data_dir=tmp_path, redis_url=redis_url)
    db.init(tmp_path)
    conn = redis.Redis.from_url(redis_url)
    jobs.create(
        tmp_path,
        app="blog",
        kind="deploy",
        ref="refs/heads/main",
        commit="a" * 40,
        old_sha="0" * 40,
        source="push",
    )
    queue.enqueue_runner(settings, conn, "blog")
    rq_id = conn.get("homeport:runner:blog")
    assert rq_id is not None
    data = conn.hget(f"rq:job:{rq_id.decode()}", "data")
    assert data is not None
    assert worker.refusal(zlib.decompress(data)) is None
    assert zlib.decompress(data) == b'["homeport.pipeline.run_app", null, ["blog"], {}]'


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'["homeport.pipeline.run_app", null, ["blog"], {}]', None),
        (b'["os.system", null, ["id"], {}]', "'os.system' is not homeport.pipeline.run_app"),
        (pickle.dumps(("os.system", None, ("id",), {})), "not JSON"),
        (b'["homeport.pipeline.run_app", null, ["blog", "x"], {}]', "exactly one app name"),
        (b'["homeport.pipeline.run_app", null, [], {"app": "blog"}]', "exactly one app name"),
        (b'["homeport.pipeline.run_app", "x", ["blog"], {}]', "exactly one app name"),
        (b'["homeport.pipeline.run_app", null, [["blog"]], {}]', "takes an app name, not"),
        (b'["homeport.pipeline.run_app", null, ["Blog\\n"], {}]', "is not an app name"),
        (b'{"func": "homeport.pipeline.run_app"}', "not [function, instance, args, kwargs]"),
        (b"[" * 5000, "bytes, not homeport's"),
        (b'["' + b"x" * 2000 + b'", null, [], {}]', "bytes, not homeport's"),
    ],
)
def test_refusal_names_what_is_wrong(data: bytes, reason: str | None) -> None:
    """Only run_app with one valid app name passes; anything else says why it is refused."""
    found = worker.refusal(data)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_foreign_jobs_before_a_push_do_not_stop_deploys(
    homeport: Homeport, work: WorkTree, tmp_path: Path
) -> None:
    """Jobs planted in Redis before a push run nothing; the push then deploys as usual."""
    proof = tmp_path / "pwned"
    conn = redis.Redis.from_url(homeport.redis_url)
    attacks = _attacks(conn, proof)
    wait_until(
        lambda: all(_status(conn, rq_id) == "failed" for rq_id in attacks.values()),
        timeout=60,
        what="the workers refusing every planted job",
        interval=0.1,
    )
    app = f"app-{uuid.uuid4().hex[:8]}"
    work.commit("first", **{"index.html": "hello"})
    pushed = work.push(homeport.remote(app))
    assert pushed.returncode == 0, pushed.stderr
    assert f"-----> {app} v1 is live" in pushed.stderr
    assert not proof.exists(), "a planted job ran code in a worker"
    logs = "".join(p.read_text() for p in homeport.data_dir.glob("worker*.log"))
    for rq_id in attacks.values():
        assert f"refused queued job {rq_id}" in logs
