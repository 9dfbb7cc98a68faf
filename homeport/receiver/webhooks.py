"""Webhook receivers: GitHub, Gitea and GitLab push events become deploy jobs.

Order matters: cap the body, verify the signature on the raw bytes in constant time, and
only then parse. The job fetches and builds; the request only verifies, records, queues.
A delivery deploys once (its id and its body are remembered, see replay.py) and only the
repository an app is bound to can deploy it (binding.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from homeport import lifecycle, names
from homeport.git import sources, sshkeys
from homeport.receiver import binding, replay
from homeport.receiver.state import State, client_address, parse_json, read_capped
from homeport.receiver.throttle import too_many
from homeport.records import db

_SHA = re.compile(r"[0-9a-f]{40}")
# Delivery ids come from the sender and are stored: bound their length and alphabet.
_DELIVERY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ZERO = "0" * 40


# The header that names each delivery; a delivery without one cannot be told from a replay.
DELIVERY_HEADERS = {
    "github": "X-GitHub-Delivery",
    "gitea": "X-Gitea-Delivery",
    "gitlab": "Idempotency-Key or X-Gitlab-Event-UUID",
}
SIGNATURE_HEADERS = {
    "github": "x-hub-signature-256",
    "gitea": "x-gitea-signature",
    "gitlab": "x-gitlab-token",
}


@dataclass(frozen=True)
class Push:
    repository: str
    full_name: str
    clone_url: str
    ref: str
    before: str
    after: str
    # The SSH clone URL, fetched instead when the app has a deploy key ("" if not given).
    ssh_url: str = ""


class BadPayload(ValueError):
    """The payload lacks what a push event must carry."""


def _hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(provider: str, headers: Any, body: bytes, secret: str) -> bool:
    """Check the provider's signature header against the raw body."""
    given = headers.get(SIGNATURE_HEADERS[provider], "")
    if provider == "github":
        expected = "sha256=" + _hex_hmac(secret, body)
    elif provider == "gitea":
        expected = _hex_hmac(secret, body)
    else:
        # GitLab sends its token itself rather than a signature, hence a token of its own.
        expected = secret
    return hmac.compare_digest(given.encode(), expected.encode())


def _event(provider: str, headers: Any) -> str:
    if provider == "github":
        return str(headers.get("x-github-event", ""))
    if provider == "gitea":
        return str(headers.get("x-gitea-event", "") or headers.get("x-github-event", ""))
    event = str(headers.get("x-gitlab-event", ""))
    return "push" if event == "Push Hook" else event


def _delivery(provider: str, headers: Any) -> str | None:
    if provider == "github":
        raw = headers.get("x-github-delivery")
        hook = headers.get("x-github-hook-id", "")
        raw = f"{hook}:{raw}" if raw and hook else raw
    elif provider == "gitea":
        raw = headers.get("x-gitea-delivery") or headers.get("x-github-delivery")
    else:
        raw = headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid")
    if not raw:
        return None
    if not _DELIVERY.fullmatch(raw):
        raise BadPayload("the delivery id header is malformed")
    return f"{provider}:{raw}"


def _str(data: Any, *path: str) -> str:
    node = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise BadPayload(f"the payload has no {'.'.join(path)}")
        node = node[key]
    if not isinstance(node, str):
        raise BadPayload(f"{'.'.join(path)} in the payload is not a string")
    return node


def _optional_str(data: Any, *path: str) -> str:
    try:
        return _str(data, *path)
    except BadPayload:
        return ""


def parse_push(provider: str, payload: Any) -> Push:
    if not isinstance(payload, dict):
        raise BadPayload("the payload is not a JSON object")
    if provider == "gitlab":
        repository = _str(payload, "project", "path")
        full_name = _str(payload, "project", "path_with_namespace")
        clone_url = _str(payload, "project", "git_http_url")
        ssh_url = _optional_str(payload, "project", "git_ssh_url")
    else:
        repository = _str(payload, "repository", "name")
        full_name = _str(payload, "repository", "full_name")
        clone_url = _str(payload, "repository", "clone_url")
        ssh_url = _optional_str(payload, "repository", "ssh_url")
    push = Push(
        repository=repository,
        full_name=full_name,
        clone_url=clone_url,
        ref=_str(payload, "ref"),
        before=_str(payload, "before") if "before" in payload else ZERO,
        after=_str(payload, "after"),
        ssh_url=ssh_url,
    )
    if not _SHA.fullmatch(push.after) or not _SHA.fullmatch(push.before):
        raise BadPayload("before/after in the payload are not 40-character commit ids")
    return push


def _answer(code: int, **body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=code)


async def receive(request: Request) -> JSONResponse:
    state: State = request.app.state.homeport
    settings = state.settings
    provider = request.path_params["provider"]
    if provider not in ("github", "gitea", "gitlab"):
        return _answer(404, error=f"no webhook for {provider!r}; use github, gitea or gitlab")
    body = await read_capped(request, settings.max_webhook_bytes)
    if body is None:
        return _answer(413, error=f"body over {settings.max_webhook_bytes} bytes")
    secret = settings.gitlab_token if provider == "gitlab" else settings.webhook_secret
    if not secret:
        variable = "HOMEPORT_GITLAB_TOKEN" if provider == "gitlab" else "HOMEPORT_WEBHOOK_SECRET"
        return _answer(
            403,
            error=f"{provider} webhooks are off: set {variable} and use the same value "
            "as the secret in the repository's webhook settings",
        )
    if not verify(provider, request.headers, body, secret):
        # A missing header is not a guess; a wrong signature or token is.
        if SIGNATURE_HEADERS[provider] in request.headers:
            blocked = state.throttle.failed(client_address(request))
            if blocked:
                return too_many(blocked)
        if provider == "gitlab":
            return _answer(401, error="X-Gitlab-Token does not match HOMEPORT_GITLAB_TOKEN")
        return _answer(401, error="signature does not match HOMEPORT_WEBHOOK_SECRET")
    digest = replay.body_digest(body)
    try:
        delivery = _delivery(provider, request.headers)
    except BadPayload as exc:
        return _answer(400, error=str(exc))
    if delivery is None:
        earlier = _seen_body(state, digest)
        if earlier is not None:
            return _answer(200, duplicate=True, job=earlier)
        return _answer(
            400,
            error=f"the delivery has no {DELIVERY_HEADERS[provider]} header; homeport needs "
            "it to recognise a delivery sent twice",
        )
    event = _event(provider, request.headers)
    if event == "ping":
        return _answer(200, ok=True, message="pong")
    if event != "push":
        return _answer(202, ignored=f"event {event!r} does not deploy")
    try:
        push = parse_push(provider, parse_json(body))
        app = request.query_params.get("app") or push.repository.lower()
        names.check_app_name(app)
        source = binding.repository(provider, push.full_name)
        sources.check_clone_url(push.clone_url, settings.allow_file_urls)
        ssh_url = _ssh_url(settings.data_dir, app, push)
    except (
        ValueError,
        names.AppNameError,
        binding.BindingError,
        sources.SourceError,
        sshkeys.SshError,
    ) as exc:
        # Every message here is homeport's own; none echoes the body.
        message = str(exc)
        if isinstance(exc, names.AppNameError):
            message += "; or name the app with ?app=NAME on the webhook URL"
        return _answer(400, error=message)
    if push.ref != f"refs/heads/{settings.deploy_branch}" or push.after == ZERO:
        return _answer(202, ignored=f"{push.ref} does not deploy")
    return await _enqueue(state, provider, delivery, digest, source, app, push, ssh_url)


def _ssh_url(data_dir: Path, app: str, push: Push) -> str:
    """The payload's SSH URL when the app has a deploy key (it is fetched over SSH), else ""."""
    if not sshkeys.has_key(data_dir, app):
        return ""
    if not push.ssh_url:
        raise sshkeys.SshError(
            f"app {app!r} has a deploy key but the payload names no SSH clone URL "
            "(repository.ssh_url, or project.git_ssh_url on GitLab)"
        )
    return sshkeys.parse_ssh_url(push.ssh_url).url


def _seen_body(state: State, digest: str) -> str | None:
    earlier = lifecycle.seen(state.settings, [replay.body_key(digest)])
    return earlier.job_id if earlier else None


async def _enqueue(
    state: State,
    provider: str,
    delivery: str,
    digest: str,
    source: str,
    app: str,
    push: Push,
    ssh_url: str = "",
) -> JSONResponse:
    settings = state.settings
    keys = [delivery, replay.body_key(digest)]

    def submit() -> lifecycle.Submitted | lifecycle.Duplicate | str:
        # A delivery seen before is a duplicate whichever repository it names now.
        earlier = lifecycle.seen(settings, keys)
        if earlier is not None:
            return earlier
        with db.connect(settings.data_dir) as conn:
            refused = binding.claim(conn, app, source)
        if refused is not None:
            return refused
        return lifecycle.submit_deploy(
            settings,
            state.redis,
            app=app,
            ref=push.ref,
            commit=push.after,
            old_sha=push.before,
            source=provider,
            params={"clone_url": push.clone_url, **({"ssh_url": ssh_url} if ssh_url else {})},
            dedup=keys,
        )

    submitted = await asyncio.to_thread(submit)
    if isinstance(submitted, str):
        return _answer(403, error=submitted)
    if isinstance(submitted, lifecycle.Duplicate):
        return _answer(200, duplicate=True, job=submitted.job_id)
    job = submitted.job
    return _answer(
        202, job=job.id, app=app, status="queued", log=f"/api/apps/{app}/jobs/{job.id}/log"
    )
