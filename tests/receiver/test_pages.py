"""The status page over plain HTTP: login, sessions, CSRF, Bearer access and error pages."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from homeport.records import jobs
from tests.support.records import make_app, seed_app
from tests.support.servers import TOKEN, Homeport, start_redis

BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture
def browser(receiver: Homeport) -> Iterator[httpx.Client]:
    """A plain HTTP client that keeps cookies, like a browser without JavaScript."""
    with httpx.Client(base_url=receiver.url, timeout=60) as client:
        yield client


def _login(client: httpx.Client, token: str = TOKEN) -> httpx.Response:
    form = client.get("/login")
    return client.post(
        "/login", data={"token": token, "csrf": _csrf(form.text), "next": "/apps/blog"}
    )


def test_login_sets_a_strict_httponly_cookie_and_a_wrong_token_is_refused(
    receiver: Homeport, browser: httpx.Client
) -> None:
    """The right token logs in (HttpOnly, SameSite=Strict, not Secure on http); a wrong one 401."""
    seed_app(receiver.data_dir, "blog", 2)
    anonymous = httpx.get(receiver.url + "/", timeout=30)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/"

    client = browser
    wrong = _login(client, token="not-the-token-0000000")
    assert wrong.status_code == 401
    assert "That token is not right" in wrong.text
    assert client.get("/").status_code == 303

    right = _login(client)
    assert right.status_code == 303 and right.headers["location"] == "/apps/blog"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert TOKEN not in cookie
    page = client.get("/apps/blog")
    assert page.status_code in (200, 503)  # 503 only if the cluster's config cannot be read
    assert 'id="release-2"' in page.text and "live" in page.text
    assert page.headers["x-frame-options"] == "DENY"

    logout = client.post("/logout", data={"csrf": _csrf(page.text)})
    assert logout.status_code == 303
    assert client.get("/").status_code == 303


def test_the_login_form_needs_its_csrf_token(receiver: Homeport) -> None:
    """A login POST without the form's CSRF token is refused even with the right token."""
    answer = httpx.post(receiver.url + "/login", data={"token": TOKEN}, timeout=30)
    assert answer.status_code == 403
    assert "security token" in answer.text and "set-cookie" not in answer.headers


def test_a_post_without_the_csrf_token_is_refused(
    receiver: Homeport, browser: httpx.Client
) -> None:
    """A logged-in browser's POST without (or with a wrong) CSRF token is 403; nothing runs."""
    seed_app(receiver.data_dir, "blog", 2)
    client = browser
    _login(client)
    before = jobs.for_app(receiver.data_dir, "blog")
    missing = client.post("/apps/blog/rollback", data={"version": "1"})
    assert missing.status_code == 403
    assert "security token is missing or stale" in missing.text
    forged = client.post("/apps/blog/rollback", data={"version": "1", "csrf": "x" * 32})
    assert forged.status_code == 403
    assert client.post("/logout").status_code == 403
    assert jobs.for_app(receiver.data_dir, "blog") == before
    assert client.get("/").status_code == 200  # still logged in


def test_bearer_token_opens_every_page_and_a_wrong_one_is_throttled(receiver: Homeport) -> None:
    """Authorization: Bearer works without a session; wrong ones count toward the throttle."""
    seed_app(receiver.data_dir, "blog", 3, host="blog.home.lan")
    page = httpx.get(receiver.url + "/", headers=BEARER, timeout=30)
    assert page.status_code == 200
    assert 'id="app-blog"' in page.text and "v3" in page.text
    assert 'href="http://blog.home.lan/"' in page.text
    (job,) = jobs.for_app(receiver.data_dir, "blog", limit=1)
    job_page = httpx.get(f"{receiver.url}/apps/blog/jobs/{job.id}", headers=BEARER, timeout=30)
    assert job_page.status_code == 200 and "blog v3 is live" in job_page.text
    log = httpx.get(f"{receiver.url}/apps/blog/jobs/{job.id}/log", headers=BEARER, timeout=30)
    assert log.text.endswith("-----> blog v3 is live\n")

    wrong = {"Authorization": "Bearer wrong-token-000000000"}
    answers = [httpx.get(receiver.url + "/", headers=wrong, timeout=30) for _ in range(11)]
    assert [a.status_code for a in answers] == [401] * 10 + [429]
    assert int(answers[-1].headers["retry-after"]) > 0
    # Blocked means blocked, with the right token too, on the API as well.
    assert httpx.get(receiver.url + "/", headers=BEARER, timeout=30).status_code == 429
    assert receiver.api("GET", "/api/apps").status_code == 429


def test_failed_logins_count_toward_the_throttle(receiver: Homeport, browser: httpx.Client) -> None:
    """Ten wrong tokens through the form, then the form answers 429 even for the right one."""
    client = browser
    csrf = _csrf(client.get("/login").text)
    codes = [
        client.post("/login", data={"token": f"guess-{n:016d}", "csrf": csrf}).status_code
        for n in range(11)
    ]
    assert codes == [401] * 10 + [429]
    right = client.post("/login", data={"token": TOKEN, "csrf": csrf})
    assert right.status_code == 429 and "set-cookie" not in right.headers
    assert receiver.api("GET", "/api/apps").status_code == 429


def test_unknown_apps_jobs_and_releases_are_404_pages(receiver: Homeport) -> None:
    """An app, job or release that does not exist is an HTML 404 saying so."""
    seed_app(receiver.data_dir, "blog", 1)
    for path, words in [
        ("/apps/nope", "app 'nope' does not exist"),
        ("/apps/blog/jobs/123", "job '123' does not exist"),
        ("/apps/blog/rollback?version=7", "has no release v7"),
    ]:
        answer = httpx.get(receiver.url + path, headers=BEARER, timeout=30)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert words in html.unescape(answer.text)


JUNK = [
    "/apps/%00",
    "/apps/" + "a" * 5000,
    "/apps/Blog",
    "/apps/blog/jobs/%27%20OR%201=1",
    "/apps/blog/jobs/" + "9" * 3000 + "/log",
    "/apps/blog/rollback",
    "/apps/blog/rollback?version=-1",
    "/apps/blog/rollback?version=0",
    "/apps/blog/rollback?version=99999999999999999999999",
    "/apps/blog/rollback?version=%F0%9F%92%A5",
    "/apps/blog/rollback?version=1&version=2",
    "/apps/blog/jobs/x/log?follow=%ff",
    "/?x=%ff%fe&" + "y=1&" * 500,
    "/login?next=//evil.example/",
    "/login?next=%0d%0aSet-Cookie:x=1",
    "/static/../pyproject.toml",
    "/static/%2e%2e/receiver/app.py",
    "/static/nope.css",
    "/apps/blog/../../etc/passwd",
]


def test_junk_paths_and_params_never_get_a_5xx(receiver: Homeport) -> None:
    """Every junk request gets a 2xx-4xx answer, logged in or not."""
    seed_app(receiver.data_dir, "blog", 2)
    for path in JUNK:
        for headers in (BEARER, {}):
            answer = httpx.get(receiver.url + path, headers=headers, timeout=30)
            assert answer.status_code < 500, (path, answer.status_code, answer.text[:300])
            assert "Traceback" not in answer.text
        if path.startswith("/login"):
            assert 'name="next" value="/"' in answer.text, path


def test_junk_posts_never_get_a_5xx(receiver: Homeport, browser: httpx.Client) -> None:
    """Forms with junk, oversized or missing fields are refused with a 4xx page."""
    seed_app(receiver.data_dir, "blog", 2)
    client = browser
    _login(client)
    csrf = _csrf(client.get("/").text)
    for data in (
        {"csrf": csrf},
        {"csrf": csrf, "version": "abc"},
        {"csrf": csrf, "version": "2"},  # the live one
        {"csrf": csrf, "version": "42"},
        {"csrf": csrf, "version": "1" * 40},
    ):
        answer = client.post("/apps/blog/rollback", data=data)
        assert 400 <= answer.status_code < 500, (data, answer.text[:300])
    big = client.post("/apps/blog/rollback", content=b"csrf=" + b"x" * 20000)
    assert big.status_code == 413
    binary = client.post("/login", content=b"\xff\xfe\x00" * 100)
    assert binary.status_code == 403
    nope = client.post("/apps/nope/rollback", data={"csrf": csrf, "version": "1"})
    assert nope.status_code == 404


def test_static_assets_are_served_by_homeport(receiver: Homeport) -> None:
    """The stylesheet and the log follower come from the package, with no other site named."""
    css = httpx.get(receiver.url + "/static/homeport.css", timeout=30)
    js = httpx.get(receiver.url + "/static/joblog.js", timeout=30)
    assert css.status_code == js.status_code == 200
    assert "@media (max-width: 700px)" in css.text and "getReader" in js.text
    login = httpx.get(receiver.url + "/login", timeout=30).text
    assert "http://" not in login and "https://" not in login


def test_outages_are_pages_naming_the_dependency(
    tmp_path: Path, start_receiver: Callable[..., Homeport]
) -> None:
    """Kubernetes down: the app page says so with 503; registry down: the rollback says so."""
    dead = start_redis(tmp_path / "dead-redis")
    dead.stop()
    hp = start_receiver(
        HOMEPORT_KUBECONFIG=str(tmp_path / "missing-kubeconfig"),
        HOMEPORT_REGISTRY="127.0.0.1:9",
        HOMEPORT_REDIS_URL=dead.url,
    )
    seed_app(hp.data_dir, "blog", 2, registry="127.0.0.1:9")
    page = httpx.get(hp.url + "/apps/blog", headers=BEARER, timeout=60)
    assert page.status_code == 503
    assert "Kubernetes is unavailable" in page.text
    assert 'id="release-2"' in page.text  # the records still show
    rollback = httpx.post(
        hp.url + "/apps/blog/rollback", headers=BEARER, data={"version": "1"}, timeout=60
    )
    assert rollback.status_code == 503
    assert "the registry is unavailable" in rollback.text
    assert rollback.headers["content-type"].startswith("text/html")


def test_an_app_without_releases_still_has_a_page(receiver: Homeport) -> None:
    """A new app with no release yet shows on both pages without errors."""
    make_app(receiver.data_dir, "fresh")
    front = httpx.get(receiver.url + "/", headers=BEARER, timeout=30)
    assert front.status_code == 200 and 'id="app-fresh"' in front.text
    page = httpx.get(receiver.url + "/apps/fresh", headers=BEARER, timeout=60)
    assert page.status_code in (200, 503) and "No releases yet" in page.text


def test_the_cookie_is_secure_when_homeport_is_reached_over_https(
    start_receiver: Callable[..., Homeport],
) -> None:
    """With an https HOMEPORT_URL the session cookie carries Secure (and stays Strict)."""
    hp = start_receiver(HOMEPORT_URL="https://homeport.example")
    with httpx.Client(base_url=hp.url, timeout=30) as client:
        form = client.get("/login")
        assert "Secure" in form.headers["set-cookie"]
        # Not sent back over plain http: the client keeps a Secure cookie for https only.
        answer = client.post(
            "/login",
            data={"token": TOKEN, "csrf": _csrf(form.text)},
            headers={"Cookie": f"homeport_session={form.cookies['homeport_session']}"},
        )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
