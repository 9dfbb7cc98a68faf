"""Webhooks against a real receiver: signatures, caps, dedup, and the fetch stage."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from homeport.receiver.webhooks import BadPayload, _delivery, parse_push, verify
from tests.support.gitwork import WorkTree
from tests.support.servers import GITLAB_TOKEN, WEBHOOK_SECRET, Homeport
from tests.support.webhooks import ZERO, github, jobs_of, payload, sign


def _source(hp: Homeport, tmp_path: Path) -> tuple[str, str]:
    """A repository served over HTTP on loopback (another homeport app) and its commit."""
    work = WorkTree(tmp_path / "source")
    commit = work.commit("first", **{"index.html": "from webhook"})
    assert work.push(hp.remote("source")).returncode == 0
    return hp.remote("source"), commit


def test_github_documented_test_vector_verifies() -> None:
    """The example from GitHub's docs verifies, and a changed body does not."""
    secret = "It's a Secret to Everybody"
    body = b"Hello, World!"
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify("github", {"x-hub-signature-256": header}, body, secret)
    assert not verify("github", {"x-hub-signature-256": header}, body + b" ", secret)


def test_push_event_fetches_and_deploys(homeport: Homeport, tmp_path: Path) -> None:
    """A signed push event queues a job that fetches the commit from the clone URL."""
    clone_url, commit = _source(homeport, tmp_path)
    body = json.dumps(payload(clone_url, commit)).encode()
    response = github(homeport, body)
    assert response.status_code == 202, response.text
    job_id = response.json()["job"]
    job = homeport.wait_job("blog", job_id)
    assert job["status"] == "succeeded", job
    log = homeport.api("GET", f"/api/apps/blog/jobs/{job_id}/log").text
    assert "-----> Fetching refs/heads/main from" in log
    # The token in the clone URL is a credential: the output names the URL without it.
    assert "test-token" not in log


def test_same_delivery_enqueues_once(homeport: Homeport, tmp_path: Path) -> None:
    """A redelivery answers duplicate; 20 concurrent copies make exactly one job."""
    clone_url, commit = _source(homeport, tmp_path)
    body = json.dumps(payload(clone_url, commit)).encode()
    answers: list[httpx.Response] = []
    threads = [
        threading.Thread(target=lambda: answers.append(github(homeport, body, delivery="same")))
        for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 19 + [202]
    assert all(a.json()["duplicate"] for a in answers if a.status_code == 200)
    assert len(jobs_of(homeport)) == 1


def test_bad_signature_is_refused_and_nothing_is_queued(homeport: Homeport) -> None:
    """Wrong HMAC, a sha1 header, upper-case hex and no header all get 401."""
    body = json.dumps(payload("http://127.0.0.1:1/x.git", "a" * 40)).encode()
    good = sign(body)
    for signature in (
        "sha256=" + "0" * 64,
        "sha1=" + good[7:47],
        good.upper(),
        "",
        "sha256=" + good[8:] + "0",
    ):
        response = github(homeport, body, signature=signature)
        assert response.status_code == 401, signature
    # A body changed after signing does not verify either.
    assert github(homeport, body + b" ", signature=good).status_code == 401
    assert jobs_of(homeport) == []


def test_oversized_body_gets_413(homeport: Homeport) -> None:
    """A body over the 1 MiB default cap is refused before any other work."""
    body = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    response = github(homeport, body)
    assert response.status_code == 413
    chunked = httpx.post(
        homeport.url + "/hooks/github",
        content=iter([b"x" * 65536] * 20),
        headers={"X-GitHub-Event": "push"},
    )
    assert chunked.status_code == 413


def test_malformed_payloads_get_400(homeport: Homeport) -> None:
    """Bad JSON, missing fields and wrong types are 400, not 500."""
    bodies = [
        b"{not json",
        b"[]",
        json.dumps({"ref": "refs/heads/main"}).encode(),
        json.dumps({**payload("http://h/x.git", "a" * 40), "ref": ["x"]}).encode(),
        json.dumps({**payload("http://h/x.git", "a" * 40), "after": "nothex"}).encode(),
    ]
    for body in bodies:
        response = github(homeport, body)
        assert response.status_code == 400, body
        assert response.json()["error"]
    assert jobs_of(homeport) == []


def test_app_mapping_and_bad_names(homeport: Homeport) -> None:
    """The repository name maps to the app unless ?app= says otherwise; bad names are 400."""
    body = json.dumps(payload("http://127.0.0.1:1/x.git", "a" * 40, name="my.site")).encode()
    bad = github(homeport, body)
    assert bad.status_code == 400
    assert "?app=NAME" in bad.json()["error"]
    good = github(homeport, body, query="?app=site")
    assert good.status_code == 202
    assert good.json()["app"] == "site"
    assert github(homeport, body, query="?app=../etc", delivery="d-2").status_code == 400


def test_ping_other_events_and_branches(homeport: Homeport) -> None:
    """ping is answered; other events and other branches enqueue nothing."""
    body = json.dumps({"zen": "hi"}).encode()
    assert github(homeport, body, event="ping").json() == {"ok": True, "message": "pong"}
    assert github(homeport, body, event="issues", delivery="d-2").status_code == 202
    other = json.dumps(payload("http://h/x.git", "a" * 40, ref="refs/heads/dev")).encode()
    response = github(homeport, other, delivery="d-3")
    assert response.status_code == 202 and "ignored" in response.json()
    assert jobs_of(homeport) == []


def test_file_urls_are_refused_by_default(homeport: Homeport) -> None:
    """A file:// clone URL would read local paths: refused unless allowed."""
    body = json.dumps(payload("file:///etc", "a" * 40)).encode()
    response = github(homeport, body)
    assert response.status_code == 400
    assert "HOMEPORT_ALLOW_FILE_URLS" in response.json()["error"]


def test_gitea_and_gitlab(homeport: Homeport, tmp_path: Path) -> None:
    """Gitea's bare-hex signature and GitLab's token header are checked."""
    clone_url, commit = _source(homeport, tmp_path)
    body = json.dumps(payload(clone_url, commit)).encode()
    sig = sign(body)[7:]
    gitea = {"X-Gitea-Event": "push", "X-Gitea-Delivery": "g-1"}
    bad = httpx.post(
        homeport.url + "/hooks/gitea",
        content=body,
        headers={**gitea, "X-Gitea-Signature": "0" * 64},
    )
    assert bad.status_code == 401
    ok = httpx.post(
        homeport.url + "/hooks/gitea", content=body, headers={**gitea, "X-Gitea-Signature": sig}
    )
    assert ok.status_code == 202, ok.text
    gitlab_body = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": ZERO,
            "after": commit,
            "project": {
                "path": "notes",
                "path_with_namespace": "me/notes",
                "git_http_url": clone_url,
            },
        }
    ).encode()
    gitlab = {"X-Gitlab-Event": "Push Hook", "Idempotency-Key": "k-1"}
    # The webhook secret is not GitLab's token: GitLab has its own.
    for token in ("nope", WEBHOOK_SECRET):
        refused = httpx.post(
            homeport.url + "/hooks/gitlab",
            content=gitlab_body,
            headers={**gitlab, "X-Gitlab-Token": token},
        )
        assert refused.status_code == 401
        assert "HOMEPORT_GITLAB_TOKEN" in refused.json()["error"]
    ok = httpx.post(
        homeport.url + "/hooks/gitlab",
        content=gitlab_body,
        headers={**gitlab, "X-Gitlab-Token": GITLAB_TOKEN},
    )
    assert ok.status_code == 202, ok.text
    assert homeport.wait_job("notes", ok.json()["job"])["status"] == "succeeded"
    assert homeport.api("GET", "/api/apps/notes/source").json()["repository"] == "gitlab:me/notes"


def test_without_a_secret_every_delivery_is_refused(tmp_path: Path, redis_url: str) -> None:
    """With no HOMEPORT_WEBHOOK_SECRET the hooks refuse and say how to set one."""
    hp = Homeport(
        data_dir=tmp_path / "d", redis_url=redis_url, extra_env={"HOMEPORT_WEBHOOK_SECRET": ""}
    ).start(workers=0)
    try:
        body = json.dumps(payload("http://h/x.git", "a" * 40)).encode()
        response = github(hp, body)
        assert response.status_code == 403
        assert "HOMEPORT_WEBHOOK_SECRET" in response.json()["error"]
    finally:
        hp.stop()


def test_without_a_gitlab_token_gitlab_deliveries_are_refused(
    tmp_path: Path, redis_url: str
) -> None:
    """With no HOMEPORT_GITLAB_TOKEN GitLab gets 403 naming it, even with the webhook secret."""
    hp = Homeport(
        data_dir=tmp_path / "d", redis_url=redis_url, extra_env={"HOMEPORT_GITLAB_TOKEN": ""}
    ).start(workers=0)
    try:
        response = httpx.post(
            hp.url + "/hooks/gitlab",
            content=b"{}",
            headers={
                "X-Gitlab-Event": "Push Hook",
                "X-Gitlab-Token": WEBHOOK_SECRET,
                "Idempotency-Key": "k-1",
            },
        )
        assert response.status_code == 403
        assert "set HOMEPORT_GITLAB_TOKEN" in response.json()["error"]
        # GitHub webhooks are unaffected.
        body = json.dumps(payload("http://127.0.0.1:9/x.git", "a" * 40)).encode()
        assert github(hp, body).status_code == 202
    finally:
        hp.stop()


def test_clone_url_credentials_never_show(homeport: Homeport) -> None:
    """A clone URL with a password: the failed fetch names the URL without it."""
    url = "http://deploy:hunter2-secret@127.0.0.1:9/blog.git"
    body = json.dumps(payload(url, "b" * 40)).encode()
    response = github(homeport, body)
    assert response.status_code == 202, response.text
    job = homeport.wait_job("blog", response.json()["job"])
    assert job["status"] == "failed"
    assert "cannot fetch refs/heads/main from http://127.0.0.1:9/blog.git" in str(job["reason"])
    log = homeport.api("GET", f"/api/apps/blog/jobs/{job['id']}/log").text
    listing = homeport.api("GET", "/api/apps/blog/jobs").text
    for text in (str(job), log, listing):
        assert "hunter2-secret" not in text


def test_a_fetched_file_over_the_blob_limit_fails_the_job(
    tmp_path: Path, redis_url: str, docker_services: str, apps_namespace: str
) -> None:
    """A webhook commit is not checked at push time: its job fails naming file and setting."""
    from tests.support.cluster import KUBECONFIG

    hp = Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        extra_env={
            "HOMEPORT_KUBECONFIG": str(KUBECONFIG),
            "HOMEPORT_NAMESPACE": apps_namespace,
            "HOMEPORT_MAX_BLOB_BYTES": "64k",
            "HOMEPORT_ALLOW_FILE_URLS": "true",
        },
    ).start(workers=1)
    try:
        work = WorkTree(tmp_path / "source")
        work.write("videos/intro.mp4", bytes(100 * 1024))
        commit = work.commit("video")
        app = f"w{uuid.uuid4().hex[:8]}"
        body = json.dumps(payload(f"file://{work.path}", commit, name=app)).encode()
        response = github(hp, body, delivery=f"d-{app}")
        assert response.status_code == 202, response.text
        job = hp.wait_job(app, response.json()["job"])
        assert job["status"] == "failed"
        assert job["reason"] == (
            "videos/intro.mp4 is 100 KB, over HOMEPORT_MAX_BLOB_BYTES (64 KB); remove it from "
            "the commit or raise the limit"
        )
        assert hp.api("GET", f"/api/apps/{app}/releases").json()["releases"] == []
    finally:
        hp.stop()


def test_names_with_a_trailing_newline_are_refused(receiver: Homeport) -> None:
    """?app=evil%0A is refused with 400 and creates no app, no job and no directory."""
    body = json.dumps(payload("http://127.0.0.1:1/x.git", "a" * 40)).encode()
    response = github(receiver, body, query="?app=evil%0A")
    assert response.status_code == 400, response.text
    assert "is not allowed" in response.json()["error"]
    assert receiver.api("GET", "/api/apps").json() == {"apps": []}
    assert not (receiver.data_dir / "repos").exists() or not any(
        (receiver.data_dir / "repos").iterdir()
    )


def test_ids_must_match_whole() -> None:
    """Commit ids and delivery ids with a trailing newline are malformed."""
    good = payload("http://h/x.git", "a" * 40)
    assert parse_push("github", good).after == "a" * 40
    for field in ("after", "before"):
        with pytest.raises(BadPayload, match="40-character commit ids"):
            parse_push("github", {**good, field: "a" * 40 + "\n"})
    with pytest.raises(BadPayload, match="delivery id"):
        _delivery("gitea", {"x-gitea-delivery": "d-1\n"})
    assert _delivery("gitea", {"x-gitea-delivery": "d-1"}) == "gitea:d-1"


def test_deeply_nested_bodies_are_400(receiver: Homeport) -> None:
    """A signed body of 3,000 '[' or of deeply nested objects is 400, not a crash."""
    for n, body in enumerate(
        (
            b"[" * 3000,
            b'{"a":' * 3000 + b"1" + b"}" * 3000,
            b'{"a":' * 40 + b"1" + b"}" * 40,
        )
    ):
        response = github(receiver, body, delivery=f"deep-{n}")
        assert response.status_code == 400, response.text
        assert "nests deeper than" in response.json()["error"]


def test_clone_urls_that_are_not_http_are_refused(receiver: Homeport) -> None:
    """ssh, scp syntax, paths, ext:: and an http URL dulwich would read as ssh are 400."""
    for n, url in enumerate(
        ["http://h:99999/r.git", "ssh://h/r.git", "git@host:x", "/abs/path", "ext::sh -c x"]
    ):
        body = json.dumps(payload(url, "a" * 40)).encode()
        response = github(receiver, body, delivery=f"u-{n}")
        assert response.status_code == 400, (url, response.text)
        assert "homeport fetches http(s) URLs" in response.json()["error"]
    assert jobs_of(receiver) == []
