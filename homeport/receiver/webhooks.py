"""Webhook receivers: GitHub, Gitea and GitLab push events become deploy jobs.

Order matters: cap the body, verify the signature on the raw bytes in constant time, and
only then parse. The job fetches and builds; the request only verifies, records, queues.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from homeport import apps, db, jobs, queue, sources
from homeport.receiver.state import State, parse_json, read_capped

_SHA = re.compile(r"[0-9a-f]{40}")
# Delivery ids come from the sender and are stored: bound their length and alphabet.
_DELIVERY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ZERO = "0" * 40


@dataclass(frozen=True)
class Push:
    repository: str
    clone_url: str
    ref: str
    before: str
    after: str


class BadPayload(ValueError):
    """The payload lacks what a push event must carry."""


def _hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(provider: str, headers: Any, body: bytes, secret: str) -> bool:
    """Check the provider's signature header against the raw body."""
    if provider == "github":
        given = headers.get("x-hub-signature-256", "")
        expected = "sha256=" + _hex_hmac(secret, body)
    elif provider == "gitea":
        given = headers.get("x-gitea-signature", "")
        expected = _hex_hmac(secret, body)
    else:
        # GitLab sends the secret itself rather than a signature.
        given = headers.get("x-gitlab-token", "")
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
    if raw is None:
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


def parse_push(provider: str, payload: Any) -> Push:
    if not isinstance(payload, dict):
        raise BadPayload("the payload is not a JSON object")
    if provider == "gitlab":
        repository = _str(payload, "project", "path")
        clone_url = _str(payload, "project", "git_http_url")
    else:
        repository = _str(payload, "repository", "name")
        clone_url = _str(payload, "repository", "clone_url")
    push = Push(
        repository=repository,
        clone_url=clone_url,
        ref=_str(payload, "ref"),
        before=_str(payload, "before") if "before" in payload else ZERO,
        after=_str(payload, "after"),
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
    if not settings.webhook_secret:
        return _answer(
            403,
            error="webhooks are off: set HOMEPORT_WEBHOOK_SECRET and use the same secret "
            "in the repository's webhook settings",
        )
    if not verify(provider, request.headers, body, settings.webhook_secret):
        return _answer(401, error="signature does not match; check the webhook secret")
    event = _event(provider, request.headers)
    if event == "ping":
        return _answer(200, ok=True, message="pong")
    if event != "push":
        return _answer(202, ignored=f"event {event!r} does not deploy")
    try:
        delivery = _delivery(provider, request.headers)
        push = parse_push(provider, parse_json(body))
        app = request.query_params.get("app") or push.repository.lower()
        apps.check_app_name(app)
        sources.check_clone_url(push.clone_url, settings.allow_file_urls)
    except (ValueError, apps.AppNameError, sources.SourceError) as exc:
        # Every message here is homeport's own; none echoes the body.
        message = str(exc)
        if isinstance(exc, apps.AppNameError):
            message += "; or name the app with ?app=NAME on the webhook URL"
        return _answer(400, error=message)
    if push.ref != f"refs/heads/{settings.deploy_branch}" or push.after == ZERO:
        return _answer(202, ignored=f"{push.ref} does not deploy")
    return await _enqueue(state, provider, delivery, app, push)


async def _enqueue(
    state: State, provider: str, delivery: str | None, app: str, push: Push
) -> JSONResponse:
    settings = state.settings
    with db.connect(settings.data_dir) as conn:
        if delivery is not None:
            row = conn.execute("SELECT job_id FROM deliveries WHERE id = ?", (delivery,)).fetchone()
            if row is not None:
                return _answer(200, duplicate=True, job=row["job_id"])
        if not apps.exists(settings.data_dir, app):
            apps.create_repo(settings.data_dir, app, settings.deploy_branch)
        job = jobs.create(
            settings.data_dir,
            app=app,
            kind="deploy",
            ref=push.ref,
            commit=push.after,
            old_sha=push.before,
            source=provider,
            params={"clone_url": push.clone_url},
            conn=conn,
        )
        if delivery is not None:
            conn.execute(
                "INSERT INTO deliveries (id, job_id, received_at) VALUES (?, ?, ?)",
                (delivery, job.id, db.now()),
            )
    try:
        queue.submit(settings, state.redis, app)
    except queue.QueueUnavailable as exc:
        # The job is recorded; a worker's recovery picks it up once Redis is back.
        return _answer(202, job=job.id, app=app, status="recorded", warning=str(exc))
    return _answer(
        202, job=job.id, app=app, status="queued", log=f"/api/apps/{app}/jobs/{job.id}/log"
    )
