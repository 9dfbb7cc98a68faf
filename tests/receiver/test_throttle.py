"""Failed authentications: past 10 a minute from one address, 429 until the minute ends."""

from __future__ import annotations

import json

import httpx

from homeport.receiver.throttle import Throttle
from tests.support.gitwork import WorkTree
from tests.support.servers import GITLAB_TOKEN, TOKEN, WEBHOOK_SECRET, Homeport
from tests.support.webhooks import github, payload, rollback_headers

# uvicorn takes the client address from X-Forwarded-For on loopback connections (a proxy
# on the same host): each test's guesser gets an address of its own that way.
GUESSER = {"X-Forwarded-For": "10.1.2.3"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_eleventh_failure_blocks_for_the_rest_of_the_window() -> None:
    """10 failures pass, the 11th blocks until 60 s after the first; then counting restarts."""
    clock = Clock()
    throttle = Throttle(clock=clock)
    for _ in range(10):
        assert throttle.failed("a") == 0
        clock.now += 1
    assert throttle.failed("a") == 50
    assert throttle.retry_after("a") == 50
    assert throttle.retry_after("b") == 0
    clock.now = 1059.5
    assert throttle.retry_after("a") == 1
    clock.now = 1060.0
    assert throttle.retry_after("a") == 0
    assert throttle.failed("a") == 0


def test_the_table_stays_bounded() -> None:
    """Failures from many addresses keep at most `capacity` entries, newest kept."""
    clock = Clock()
    throttle = Throttle(capacity=100, clock=clock)
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle) == 100
    for _ in range(11):
        throttle.failed("last")
    assert throttle.retry_after("last") == 60
    assert len(throttle) == 100


def _bearer(hp: Homeport, token: str, headers: dict[str, str] | None = None) -> httpx.Response:
    sent = {"Authorization": f"Bearer {token}", **(headers or {})}
    return httpx.get(hp.url + "/api/apps", headers=sent, timeout=30)


def _is_429(response: httpx.Response) -> bool:
    return (
        response.status_code == 429
        and 1 <= int(response.headers["Retry-After"]) <= 60
        and "try again in" in response.json()["error"]
    )


def test_wrong_tokens_get_429_and_block_the_address(receiver: Homeport) -> None:
    """The 11th wrong Bearer token is 429 with Retry-After; then even the right one is."""
    for _ in range(10):
        assert _bearer(receiver, "wrong-token-guess", GUESSER).status_code == 401
    assert _is_429(_bearer(receiver, "wrong-token-guess", GUESSER))
    # Guessing stops: the right token from that address is refused for the minute too.
    assert _is_429(_bearer(receiver, TOKEN, GUESSER))
    blocked_hook = github(receiver, b"{}", headers=GUESSER)
    assert blocked_hook.status_code == 429
    # Another address, and /healthz, are unaffected.
    assert _bearer(receiver, TOKEN).status_code == 200
    assert httpx.get(receiver.url + "/healthz", headers=GUESSER).status_code == 200


def test_missing_credentials_and_successes_are_never_counted(receiver: Homeport) -> None:
    """50 good requests and 50 without credentials leave the full 10 failures allowed."""
    for _ in range(50):
        assert _bearer(receiver, TOKEN, GUESSER).status_code == 200
        assert httpx.get(receiver.url + "/api/apps", headers=GUESSER).status_code == 401
    for _ in range(10):
        assert _bearer(receiver, "wrong-token-guess", GUESSER).status_code == 401
    assert _is_429(_bearer(receiver, "wrong-token-guess", GUESSER))


def test_wrong_git_passwords_get_429(receiver: Homeport, work: WorkTree) -> None:
    """The real git client: 10 wrong passwords fail to authenticate, the 11th gets 429."""
    work.commit("first", **{"a.txt": "a"})
    assert work.push(receiver.remote("blog"), "main:refs/heads/dev").returncode == 0
    header = ["-c", "http.extraHeader=X-Forwarded-For: 10.1.2.3"]

    def ls_remote(token: str) -> str:
        result = work.git(*header, "ls-remote", receiver.remote("blog", token), check=False)
        return result.stderr if result.returncode else "ok"

    for _ in range(10):
        assert "Authentication failed" in ls_remote("wrong-password-guess")
    assert "429" in ls_remote("wrong-password-guess")
    assert "429" in ls_remote(TOKEN)
    # The push from before and this clone come from loopback itself: not blocked.
    assert work.git("ls-remote", receiver.remote("blog"), check=False).returncode == 0


def test_bad_webhook_signatures_and_gitlab_tokens_get_429(receiver: Homeport) -> None:
    """Wrong signatures and GitLab tokens count; the signed delivery after them gets 429."""
    body = json.dumps(payload("http://127.0.0.1:9/blog.git", "a" * 40)).encode()
    for n in range(5):
        bad = github(receiver, body, signature="sha256=" + "0" * 64, headers=GUESSER)
        assert bad.status_code == 401
        gitlab = httpx.post(
            receiver.url + "/hooks/gitlab",
            content=b"{}",
            headers={**GUESSER, "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": f"guess-{n}"},
        )
        assert gitlab.status_code == 401
    assert _is_429(github(receiver, body, signature="sha256=" + "1" * 64, headers=GUESSER))
    assert _is_429(github(receiver, body, headers=GUESSER))
    right = httpx.post(
        receiver.url + "/hooks/gitlab",
        content=b"{}",
        headers={**GUESSER, "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": GITLAB_TOKEN},
    )
    assert right.status_code == 429
    assert github(receiver, body).status_code == 202


def test_bad_signed_rollbacks_get_429(receiver: Homeport) -> None:
    """Bad rollback signatures count like wrong tokens."""
    path, body = "/api/apps/blog/rollback", b"{}"
    for n in range(10):
        headers = {**GUESSER, **rollback_headers(path, body, secret=f"guessed-secret-{n:04}")}
        response = httpx.post(receiver.url + path, content=body, headers=headers)
        assert response.status_code == 401
    # The 11th failure gets 429, and so does the right signature after it.
    for secret in ("guessed-secret-0011", WEBHOOK_SECRET):
        headers = {**GUESSER, **rollback_headers(path, body, secret=secret)}
        assert _is_429(httpx.post(receiver.url + path, content=body, headers=headers))


def test_failures_on_every_route_add_up(receiver: Homeport, work: WorkTree) -> None:
    """One count per address across the API, git, webhooks and signed rollbacks."""
    for _ in range(3):
        assert _bearer(receiver, "wrong-token-guess", GUESSER).status_code == 401
        assert github(receiver, b"{}", signature="sha256=0", headers=GUESSER).status_code == 401
    for n in range(2):
        path = "/api/apps/blog/rollback"
        headers = {**GUESSER, **rollback_headers(path, b"{}", secret=f"guessed-secret-{n:04}")}
        assert httpx.post(receiver.url + path, content=b"{}", headers=headers).status_code == 401
    work.commit("first", **{"a.txt": "a"})
    header = ["-c", "http.extraHeader=X-Forwarded-For: 10.1.2.3"]
    for _ in range(2):
        result = work.git(*header, "ls-remote", receiver.remote("blog", "wrong-guess"), check=False)
        assert "Authentication failed" in result.stderr
    assert _is_429(_bearer(receiver, "wrong-token-guess", GUESSER))
