"""A dependency that is down is a 503 naming it (a rejected push says so), never a 400 or 500."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from homeport.records import db, releases
from tests.support.gitwork import WorkTree
from tests.support.servers import WEBHOOK_SECRET, Homeport, free_port, start_redis

IMAGE = f"127.0.0.1:{free_port()}/blog@sha256:" + "ab" * 32


@pytest.fixture
def cut_off(tmp_path: Path) -> Iterator[Homeport]:
    """A receiver whose Redis has stopped, whose registry is not running and whose
    kubeconfig cannot be read."""
    redis = start_redis(tmp_path / "redis")
    redis.stop()
    hp = Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis.url,
        extra_env={
            "HOMEPORT_KUBECONFIG": str(tmp_path / "missing-kubeconfig"),
            "HOMEPORT_REGISTRY": IMAGE.partition("/")[0],
        },
    ).start(workers=0)
    yield hp
    hp.stop()


def test_a_push_while_redis_is_down_is_rejected_naming_it(
    cut_off: Homeport, work: WorkTree
) -> None:
    """The ref is refused with the kind of trouble and what to do; the job is failed."""
    work.commit("one", **{"index.html": "one"})
    pushed = work.push(cut_off.remote("blog"))
    assert pushed.returncode != 0
    assert "deploy not queued (unavailable): cannot reach Redis" in pushed.stderr
    (job,) = cut_off.api("GET", "/api/apps/blog/jobs").json()["jobs"]
    assert job["status"] == "failed" and job["reason"].startswith("not queued: cannot reach Redis")


def test_a_webhook_while_redis_is_down_is_503(cut_off: Homeport) -> None:
    """A signed push event that cannot be queued answers 503 naming Redis, with Retry-After."""
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": "1" * 40,
            "repository": {
                "name": "blog",
                "full_name": "me/blog",
                "clone_url": "https://example.invalid/me/blog.git",
            },
        }
    ).encode()
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer = httpx.post(
        cut_off.url + "/hooks/github",
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "d-503",
            "X-Hub-Signature-256": signature,
            "Content-Type": "application/json",
        },
        timeout=60,
    )
    assert answer.status_code == 503, answer.text
    assert answer.json()["unavailable"] == "Redis"
    assert "cannot reach Redis" in answer.json()["error"]
    assert answer.headers["retry-after"] == "5"


def test_kubernetes_and_registry_outages_are_503(cut_off: Homeport) -> None:
    """Config needs Kubernetes, a rollback checks the registry: each outage is a 503 naming it."""
    config = cut_off.api("GET", "/api/apps/blog/config")
    assert config.status_code == 503, config.text
    assert config.json()["unavailable"] == "Kubernetes"
    assert "cannot load Kubernetes credentials" in config.json()["error"]

    data = cut_off.data_dir
    db.init(data)
    (data / "repos" / "blog.git" / "objects").mkdir(parents=True)
    for commit in ("a" * 40, "b" * 40):
        made = releases.create(data, app="blog", commit=commit, image=IMAGE, config={})
        releases.mark_live(data, "blog", made.version)
    with db.connect(data) as conn:  # v1 ran another image, so it is a real target
        conn.execute("UPDATE releases SET image = ? WHERE version = 1", (IMAGE[:-2] + "cd",))
    rollback = cut_off.api("POST", "/api/apps/blog/rollback", json={"version": 1})
    assert rollback.status_code == 503, rollback.text
    assert rollback.json()["unavailable"] == "the registry"
    assert "is unreachable" in rollback.json()["error"]


def test_runtime_routes_answer_503_naming_kubernetes(cut_off: Homeport) -> None:
    """ps, logs (followed or not) and runs need Kubernetes: each outage is a 503 naming it."""
    data = cut_off.data_dir
    db.init(data)
    (data / "repos" / "blog.git" / "objects").mkdir(parents=True)
    made = releases.create(data, app="blog", commit="a" * 40, image=IMAGE, config={})
    releases.mark_live(data, "blog", made.version)
    answers = [
        cut_off.api("GET", "/api/apps/blog/ps"),
        cut_off.api("GET", "/api/apps/blog/logs"),
        cut_off.api("GET", "/api/apps/blog/logs?follow=1"),
        cut_off.api("POST", "/api/apps/blog/runs", json={"command": ["true"]}),
        cut_off.api("GET", f"/api/apps/blog/runs/{'0' * 12}"),
    ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["unavailable"] == "Kubernetes"
        assert "cannot load Kubernetes credentials" in answer.json()["error"]
