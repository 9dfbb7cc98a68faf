"""Property tests: no request to the webhook or API handlers produces a 500."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from homeport.config import Settings
from homeport.receiver.app import create_app
from tests.support.servers import GITLAB_TOKEN, TOKEN, WEBHOOK_SECRET

ALLOWED = {200, 202, 400, 401, 403, 404, 405, 413}


class Client:
    """Calls the ASGI app in-process; a crash surfaces as a 500, as it would on the wire.

    Each request comes from an address of its own, so that the failed-authentication limit
    (tested on its own) does not turn every later example into a 429.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.addresses = (
            f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" for n in itertools.count()
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        client = (next(self.addresses), 40000)

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False, client=client)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(call())

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[Client]:
    s = Settings(
        data_dir=tmp_path,
        redis_url=redis_url,
        token=TOKEN,
        webhook_secret=WEBHOOK_SECRET,
        gitlab_token=GITLAB_TOKEN,
        max_webhook_bytes=4096,
    )
    yield Client(create_app(s, TOKEN, redis.Redis.from_url(redis_url)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "ref": st.one_of(st.just("refs/heads/main"), json_values),
        "before": st.one_of(st.just("0" * 40), json_values),
        "after": st.one_of(st.just("a" * 40), json_values),
        "repository": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.one_of(st.just("blog"), json_values),
                    "full_name": st.one_of(st.just("me/blog"), json_values),
                    "clone_url": st.one_of(st.just("http://127.0.0.1:9/b.git"), json_values),
                },
            ),
            json_values,
        ),
        "project": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "path": st.one_of(st.just("blog"), json_values),
                    "path_with_namespace": st.one_of(st.just("me/blog"), json_values),
                    "git_http_url": st.one_of(st.just("http://127.0.0.1:9/b.git"), json_values),
                },
            ),
            json_values,
        ),
    },
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    provider=st.sampled_from(["github", "gitea", "gitlab", "bitbucket"]),
    payload=payloads,
    raw=st.one_of(st.none(), st.binary(max_size=300)),
    event=st.sampled_from(["push", "ping", "Push Hook", "issues", ""]),
    delivery=st.one_of(st.none(), st.text(max_size=40)),
    signed=st.booleans(),
    app=st.one_of(st.none(), st.text(max_size=45)),
)
def test_webhooks_never_crash(
    client: Client,
    provider: str,
    payload: object,
    raw: bytes | None,
    event: str,
    delivery: str | None,
    signed: bool,
    app: str | None,
) -> None:
    """Any body, signed or not, with any headers, gets a 2xx/4xx answer with a message."""
    body = raw if raw is not None else json.dumps(payload).encode()
    digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": event,
        "X-Gitea-Event": event,
        "X-Gitlab-Event": event,
        "X-Hub-Signature-256": "sha256=" + digest if signed else "sha256=0",
        "X-Gitea-Signature": digest if signed else "0",
        "X-Gitlab-Token": GITLAB_TOKEN if signed else "x",
    }
    if delivery is not None and delivery.isascii() and delivery.isprintable():
        headers["X-GitHub-Delivery"] = delivery
        headers["X-Gitea-Delivery"] = delivery
        headers["Idempotency-Key"] = delivery
    params = {"app": app} if app is not None else None
    response = client.post(f"/hooks/{provider}", content=body, headers=headers, params=params)
    assert response.status_code in ALLOWED, response.text
    assert WEBHOOK_SECRET not in response.text
    assert GITLAB_TOKEN not in response.text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    app=st.text(min_size=1, max_size=50).filter(lambda s: "/" not in s and s not in (".", "..")),
    job=st.text(min_size=1, max_size=30).filter(lambda s: "/" not in s and s not in (".", "..")),
    tail=st.sampled_from(["", "/log", "/log?follow=1"]),
    token=st.sampled_from([TOKEN, "nope", ""]),
)
def test_api_never_crashes(client: Client, app: str, job: str, tail: str, token: str) -> None:
    """Any app or job name, with or without the token, gets a 2xx/4xx answer."""
    from urllib.parse import quote

    headers = {"Authorization": f"Bearer {token}"}
    for path in (f"/api/apps/{quote(app)}/jobs", f"/api/apps/{quote(app)}/jobs/{quote(job)}{tail}"):
        response = client.get(path, headers=headers)
        assert response.status_code in ALLOWED, (path, response.text)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    app=st.one_of(st.just("blog"), st.text(min_size=1, max_size=45)),
    stamp=st.one_of(st.none(), st.text(max_size=20), st.integers().map(str)),
    signature=st.one_of(st.just("sha256=" + "0" * 64), st.text(max_size=80)),
    body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())),
)
def test_signed_rollbacks_never_crash(
    client: Client, app: str, stamp: str | None, signature: str, body: bytes
) -> None:
    """Any timestamp, signature and body on the rollback route gets a 4xx with a message."""
    from urllib.parse import quote

    headers = {"X-Homeport-Signature-256": signature}
    if stamp is not None:
        headers["X-Homeport-Timestamp"] = stamp
    headers = {k: v for k, v in headers.items() if v.isascii() and v.isprintable()}
    response = client.post(
        f"/api/apps/{quote(app, safe='')}/rollback", content=body, headers=headers
    )
    assert response.status_code in ALLOWED - {200, 202}, response.text
    assert response.json()["error"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    app=st.one_of(st.just("blog"), st.text(min_size=1, max_size=45)),
    method=st.sampled_from(["GET", "PUT", "DELETE"]),
    body=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.text(max_size=300).map(lambda t: json.dumps({"repository": t}).encode()),
    ),
)
def test_source_api_never_crashes(client: Client, app: str, method: str, body: bytes) -> None:
    """Any app name and body on /api/apps/{app}/source gets a 2xx/4xx answer."""
    from urllib.parse import quote

    headers = {"Authorization": f"Bearer {TOKEN}"}
    path = f"/api/apps/{quote(app, safe='')}/source"
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code in ALLOWED, (path, response.text)
