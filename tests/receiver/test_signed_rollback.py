"""Signed rollbacks: the signature covers time, method, path and body, and works once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from tests.support.gitwork import WorkTree
from tests.support.servers import WEBHOOK_SECRET, Homeport
from tests.support.webhooks import jobs_of, rollback_headers, sign

ROOT = Path(__file__).resolve().parents[2]
PATH = "/api/apps/blog/rollback"
BODY = b'{"version": 1}'


def _create(hp: Homeport, work: WorkTree, app: str) -> None:
    """Create the app with a push to a branch that does not deploy."""
    work.commit("first", **{"a.txt": "a"})
    result = work.push(hp.remote(app), "main:refs/heads/dev")
    assert result.returncode == 0, result.stderr


def _post(hp: Homeport, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(hp.url + path, content=body, headers=headers, timeout=30)


def _accepted(response: httpx.Response) -> bool:
    """Past the signature check: blog has no releases, so the route answers 404 saying so."""
    return response.status_code == 404 and "has no releases yet" in response.json()["error"]


def test_a_signature_works_once(receiver: Homeport, work: WorkTree) -> None:
    """A valid signature passes once; the same request again is 401 and queues nothing."""
    _create(receiver, work, "blog")
    headers = rollback_headers(PATH, BODY)
    first = _post(receiver, PATH, BODY, headers)
    assert _accepted(first), first.text
    replayed = _post(receiver, PATH, BODY, headers)
    assert replayed.status_code == 401
    assert "used before" in replayed.json()["error"]
    assert jobs_of(receiver) == []


def test_a_signature_is_bound_to_its_path_method_and_body(
    receiver: Homeport, work: WorkTree
) -> None:
    """A signature for blog does not roll back another app, nor sign another body or method."""
    _create(receiver, work, "blog")
    _create(receiver, work, "shop")
    for_blog = rollback_headers(PATH, BODY)
    other_app = _post(receiver, "/api/apps/shop/rollback", BODY, for_blog)
    assert other_app.status_code == 401
    assert "signature does not match" in other_app.json()["error"]
    other_body = _post(receiver, PATH, b'{"version": 2}', for_blog)
    assert other_body.status_code == 401
    as_get = _post(receiver, PATH, BODY, rollback_headers(PATH, BODY, method="GET"))
    assert as_get.status_code == 401
    wrong_secret = rollback_headers(PATH, BODY, secret="another-secret-of-length")
    assert _post(receiver, PATH, BODY, wrong_secret).status_code == 401
    # None of these used up the signature for blog.
    assert _accepted(_post(receiver, PATH, BODY, for_blog))
    assert jobs_of(receiver, "shop") == [] and jobs_of(receiver) == []


def test_a_body_only_signature_is_refused_saying_what_to_sign(
    receiver: Homeport, work: WorkTree
) -> None:
    """The old body-only signature gets 401 naming the timestamp header and the string."""
    _create(receiver, work, "blog")
    bare = _post(receiver, PATH, BODY, {"X-Homeport-Signature-256": sign(BODY)})
    assert bare.status_code == 401
    error = bare.json()["error"]
    assert "X-Homeport-Timestamp" in error and "method" in error and "path" in error
    stamped = _post(
        receiver,
        PATH,
        BODY,
        {"X-Homeport-Signature-256": sign(BODY), "X-Homeport-Timestamp": str(int(time.time()))},
    )
    assert stamped.status_code == 401
    assert "signature does not match" in stamped.json()["error"]
    assert WEBHOOK_SECRET not in bare.text + stamped.text


def test_timestamps_more_than_five_minutes_off_are_refused(
    receiver: Homeport, work: WorkTree
) -> None:
    """A timestamp 301 s old or ahead is 401; 290 s old still passes; junk is 401."""
    _create(receiver, work, "blog")
    now = int(time.time())
    old = _post(receiver, PATH, BODY, rollback_headers(PATH, BODY, stamp=now - 301))
    assert old.status_code == 401 and "behind" in old.json()["error"]
    ahead = _post(receiver, PATH, BODY, rollback_headers(PATH, BODY, stamp=now + 310))
    assert ahead.status_code == 401 and "ahead of" in ahead.json()["error"]
    junk = rollback_headers(PATH, BODY)
    junk["X-Homeport-Timestamp"] = "-1"
    assert _post(receiver, PATH, BODY, junk).status_code == 401
    assert _accepted(_post(receiver, PATH, BODY, rollback_headers(PATH, BODY, stamp=now - 290)))


def test_the_signature_header_opens_only_the_rollback_route(receiver: Homeport) -> None:
    """A signature header on another /api route does not skip the token check."""
    headers = rollback_headers(PATH, BODY)
    for method, path in (
        ("GET", "/api/apps/blog/jobs/rollback"),
        ("GET", PATH),
        ("POST", "/api/apps/blog/jobs/x/rollback"),
    ):
        response = httpx.request(method, receiver.url + path, headers=headers)
        assert response.status_code == 401, (method, path)


def test_without_a_webhook_secret_signed_rollbacks_are_off(tmp_path: Path, redis_url: str) -> None:
    """With no HOMEPORT_WEBHOOK_SECRET a signed rollback is 401 saying how to turn it on."""
    hp = Homeport(
        data_dir=tmp_path / "d", redis_url=redis_url, extra_env={"HOMEPORT_WEBHOOK_SECRET": ""}
    ).start(workers=0)
    try:
        response = _post(hp, PATH, BODY, rollback_headers(PATH, BODY))
        assert response.status_code == 401
        assert "HOMEPORT_WEBHOOK_SECRET" in response.json()["error"]
    finally:
        hp.stop()


def _docs_snippet() -> str:
    page = (ROOT / "docs" / "api.md").read_text()
    section = page[page.index("## Signed rollbacks") :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_docs_example_rolls_back(homeport: Homeport, work: WorkTree) -> None:
    """The API docs' openssl + curl example, run as written, rolls the app back to v1."""
    # Only the app name changes: other test runs deploy and prune a registry repository "blog".
    app = f"docs-{uuid.uuid4().hex[:8]}"
    snippet = _docs_snippet()
    assert snippet.count("path=/api/apps/blog/rollback\n") == 1
    snippet = snippet.replace("/api/apps/blog/", f"/api/apps/{app}/")
    for text in ("one", "two"):
        work.commit(text, **{"index.html": text})
        pushed = work.push(homeport.remote(app))
        assert pushed.returncode == 0, pushed.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_URL=homeport.url, HOMEPORT_WEBHOOK_SECRET=WEBHOOK_SECRET)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippet],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["target"] == 1, answer
    assert homeport.wait_job(app, answer["job"])["status"] == "succeeded"
    latest = homeport.api("GET", f"/api/apps/{app}/releases").json()["releases"][0]
    assert (latest["version"], latest["status"], latest["rollback_of"]) == (3, "live", 1)
