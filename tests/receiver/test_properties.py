"""Property tests: no request to the webhook or API handlers produces a 500."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from homeport import apps
from homeport.receiver.app import create_app
from homeport.records import joblog, jobs, releases
from homeport.settings import Settings
from tests.support.records import queued_job
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
        self.job_id = ""

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


# Every route of the receiver and the method it takes, with path segments filled in by the
# strategies below.
ROUTES = [
    ("GET", "/healthz"),
    ("GET", "/api/apps"),
    ("GET", "/api/apps/{app}"),
    ("GET", "/api/apps/{app}/jobs"),
    ("GET", "/api/apps/{app}/jobs/{job}"),
    ("GET", "/api/apps/{app}/jobs/{job}/log"),
    ("GET", "/api/apps/{app}/releases"),
    ("POST", "/api/apps/{app}/rollback"),
    ("GET", "/api/apps/{app}/config"),
    ("POST", "/api/apps/{app}/config"),
    ("POST", "/hooks/{provider}"),
    ("GET", "/git/{app}.git/info/refs"),
    ("POST", "/git/{app}.git/git-upload-pack"),
    ("POST", "/git/{app}.git/git-receive-pack"),
    ("GET", "/git/{app}.git/HEAD"),
    ("GET", "/git/{app}.git/objects/{segment}/{segment}"),
    ("GET", "/git/{segment}"),
    ("GET", "/{segment}"),
    # The status page.
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/apps/{app}"),
    ("GET", "/apps/{app}/rollback"),
    ("POST", "/apps/{app}/rollback"),
    ("GET", "/apps/{app}/jobs/{job}"),
    ("GET", "/apps/{app}/jobs/{job}/log"),
    ("GET", "/static/{segment}"),
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
KNOWN_APP = "known"


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """one_of with weights: the branches of a bare one_of are drawn about equally often."""
    picks = [i for i, (weight, _) in enumerate(choices) for _ in range(weight)]
    return st.sampled_from(picks).flatmap(lambda i: choices[i][1])


segments = st.text(max_size=20).map(lambda s: quote(s, safe=""))
# Mostly the app that exists, so that requests get past the name and existence checks.
app_names = weighted(
    (4, st.just(KNOWN_APP)),
    (1, st.from_regex(r"[a-z0-9-]{1,45}", fullmatch=True)),
    (1, segments),
)
# Header values as the wire carries them: latin-1, no line breaks.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
)
BEARER = f"Bearer {TOKEN}"
BASIC = "Basic " + base64.b64encode(f"git:{TOKEN}".encode()).decode()
# Mostly the token the route takes (Basic for git, Bearer elsewhere), since the API and git
# need it to get past the front door; else none, the other kind, or something made up.
AUTH_KINDS = ["right"] * 8 + ["none", "bearer", "basic", "made-up"]
made_up_authorizations = st.one_of(
    st.builds(lambda t: f"Bearer {t}", header_text),
    st.builds(lambda t: f"Basic {t}", header_text),
    header_text,
)


def _authorization(kind: str, route: str, made_up: str) -> str | None:
    if kind == "right":
        return BASIC if route.startswith("/git/") else BEARER
    return {"none": None, "bearer": BEARER, "basic": BASIC}.get(kind, made_up)


deep = st.one_of(st.integers(min_value=1, max_value=5000), st.sampled_from([40, 1000, 3000]))
huge = st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40])


def _pkt(data: bytes) -> bytes:
    return f"{len(data) + 4:04x}".encode() + data


# What a git client sends, cut short or followed by junk.
ref_update = st.builds(
    lambda old, new, ref, tail: (
        _pkt(f"{old} {new} {ref}\0report-status side-band-64k".encode()) + b"0000" + tail
    ),
    st.sampled_from(["0" * 40, "a" * 40]),
    st.sampled_from(["0" * 40, "b" * 40]),
    st.sampled_from(["refs/heads/main", "refs/heads/dev", "HEAD", "refs/heads/main\n"]),
    st.one_of(st.just(b""), st.binary(max_size=64).map(lambda b: b"PACK" + b)),
)
want = st.builds(
    lambda sha, tail: _pkt(f"want {sha} side-band-64k\n".encode()) + b"0000" + tail,
    st.sampled_from(["a" * 40, "0" * 40, "zz"]),
    st.sampled_from([b"", b"0009done\n", b"0000", b"ffff"]),
)
bodies = weighted(
    (1, st.just(b"")),
    (1, st.binary(max_size=300)),
    (1, json_values.map(lambda v: json.dumps(v).encode())),
    (2, st.one_of(st.integers(), huge).map(lambda n: json.dumps({"version": n}).encode())),
    (2, deep.map(lambda n: b"[" * n)),
    (2, deep.map(lambda n: b'{"a":' * n + b"1" + b"}" * n)),
    (1, json_values.map(lambda v: json.dumps({"set": v, "unset": v}).encode())),
    (1, ref_update),
    (1, want),
)


@pytest.fixture
def routes_client(tmp_path: Path, redis_url: str) -> Iterator[Client]:
    """The receiver with one app that has a finished job, a release and a webhook secret."""
    s = Settings(
        data_dir=tmp_path,
        redis_url=redis_url,
        token=TOKEN,
        webhook_secret=WEBHOOK_SECRET,
        max_webhook_bytes=4096,
        # No cluster: the config routes answer that they cannot reach one.
        kubeconfig=str(tmp_path / "no-kubeconfig"),
        registry="127.0.0.1:9",
        # Anything that waits for a job (a push, a followed log) gives up within seconds.
        job_timeout=1,
    )
    app = create_app(s, TOKEN, redis.Redis.from_url(redis_url))
    apps.create_repo(tmp_path, KNOWN_APP, "main")
    job = queued_job(tmp_path, KNOWN_APP)
    jobs.finish(tmp_path, job.id, jobs.SUCCEEDED, "")
    joblog.JobLog(joblog.log_path(tmp_path, KNOWN_APP, job.id)).write("-----> done")
    for _ in (1, 2):
        release = releases.create(
            tmp_path,
            app=KNOWN_APP,
            commit="a" * 40,
            image=f"127.0.0.1:9/known@sha256:{'0' * 64}",
            config={},
            job_id=job.id,
        )
        releases.mark_live(tmp_path, KNOWN_APP, release.version)
    client = Client(app)
    client.job_id = job.id
    yield client


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(ROUTES),
    # None: the route's own method, most of the time.
    other_method=weighted((3, st.none()), (1, st.sampled_from(METHODS))),
    provider=st.one_of(st.sampled_from(["github", "gitea", "gitlab"]), segments),
    app=app_names,
    job=st.one_of(st.just("<job>"), segments),
    segment=segments,
    query=st.one_of(
        st.just(""),
        st.sampled_from(
            ["?follow=1", "?service=git-upload-pack", "?service=git-receive-pack", "?app=evil%0A"]
        ),
        st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3).map(
            lambda d: "?" + urlencode(d)
        ),
    ),
    auth_kind=st.sampled_from(AUTH_KINDS),
    made_up=made_up_authorizations,
    signature=st.one_of(st.none(), st.just("sha256=" + "0" * 64), header_text),
    extra=st.dictionaries(
        st.sampled_from(
            [
                "content-type",
                "content-encoding",
                "x-github-event",
                "x-github-delivery",
                "x-gitlab-token",
                "accept",
                "x-anything",
            ]
        ),
        header_text,
        max_size=3,
    ),
    body=bodies,
)
def test_no_route_answers_5xx(
    routes_client: Client,
    caplog: pytest.LogCaptureFixture,
    route: tuple[str, str],
    other_method: str | None,
    provider: str,
    app: str,
    job: str,
    segment: str,
    query: str,
    auth_kind: str,
    made_up: str,
    signature: str | None,
    extra: dict[str, str],
    body: bytes,
) -> None:
    """Any method, path, headers and body, with or without the token: never a 5xx."""
    method, template = route
    method = other_method or method
    job = routes_client.job_id if job == "<job>" else job
    path = template.format(app=app, job=job, segment=segment, provider=provider) + query
    headers = dict(extra)
    if template.startswith("/git/") and method == "POST":
        service = template.rpartition("/")[2]
        headers.setdefault("content-type", f"application/x-{service}-request")
    authorization = _authorization(auth_kind, template, made_up)
    if authorization is not None:
        headers["authorization"] = authorization
    if signature is not None:
        headers["x-homeport-signature-256"] = signature
    caplog.clear()
    response = routes_client.request(
        method, path, headers={k: v.encode("latin-1") for k, v in headers.items()}, content=body
    )
    # A dependency that is down (no cluster, no registry here) is the one 5xx: a 503 naming it.
    # (The API says so in JSON's "unavailable", a status page in words.)
    down = response.status_code == 503 and (method == "HEAD" or "unavailable" in response.text)
    assert response.status_code < 500 or down, (method, path, headers, body[:80], response.text)
    assert TOKEN not in response.text
    # Nor a traceback in the log, even where the status had gone out before the error.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-2000:]
