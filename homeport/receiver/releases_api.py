"""Release routes: the history, rollbacks and app config secrets.

A rollback is authorised by the token, or by a signature made with the webhook secret so
that a monitor's alert webhook can call it without holding the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from homeport import apps, jobs, queue, releases
from homeport.errors import HomeportError
from homeport.receiver.api import authorized, existing_app, state_of
from homeport.receiver.state import BadJSON, parse_json, read_capped

SIGNATURE_HEADER = "x-homeport-signature-256"
# A rollback body is at most {"version": N}: anything larger is not one.
MAX_ROLLBACK_BODY = 4096
# Release numbers are SQLite integers (64-bit); a larger number cannot name one.
MAX_VERSION = 2**63 - 1


def signed(request: Request, body: bytes) -> bool:
    secret = state_of(request).settings.webhook_secret
    given = request.headers.get(SIGNATURE_HEADER)
    if not secret or not given:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given.encode(), expected.encode())


async def list_releases(request: Request) -> Response:
    app = existing_app(request)
    data_dir = state_of(request).settings.data_dir
    found = await asyncio.to_thread(releases.history, data_dir, app)
    return JSONResponse({"releases": [r.to_dict() for r in found]})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def rollback(request: Request) -> Response:
    body = await read_capped(request, MAX_ROLLBACK_BODY)
    if body is None:
        return _error(413, f"body over {MAX_ROLLBACK_BODY} bytes")
    if not (authorized(request) or signed(request, body)):
        return _error(
            401,
            "send Authorization: Bearer <token>, or X-Homeport-Signature-256: sha256=<HMAC-SHA256 "
            "of the body with the webhook secret>",
        )
    app = existing_app(request)
    version: int | None = None
    if body.strip():
        try:
            data: Any = parse_json(body)
        except BadJSON as exc:
            return _error(400, f'{exc}; send {{}} or {{"version": N}}')
        raw = data.get("version") if isinstance(data, dict) else "bad"
        if raw is not None and (
            isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_VERSION
        ):
            return _error(400, "version must be a release number (a positive integer)")
        version = raw
    settings = state_of(request).settings

    def choose() -> releases.Release:
        if version is None:
            return releases.rollback_target(settings.data_dir, app)
        return releases.get(settings.data_dir, app, version)

    target = await asyncio.to_thread(choose)
    what = f"{app} v{target.version}"
    if target.status not in releases.WAS_LIVE:
        return _error(409, f"{what} never went live ({target.status}); roll back to one that did")
    current = await asyncio.to_thread(releases.live, settings.data_dir, app)
    if current is not None and current.version == target.version:
        return _error(409, f"{what} is already live; name another release to roll back to")
    try:
        await asyncio.to_thread(releases.require_image, target)
    except releases.ReleaseUnavailable as exc:
        return _error(409, str(exc))
    job = jobs.create(
        settings.data_dir,
        app=app,
        kind="rollback",
        ref=f"refs/heads/{settings.deploy_branch}",
        commit=target.commit,
        old_sha="0" * 40,
        source="api",
        params={"version": target.version},
    )
    try:
        queue.submit(settings, state_of(request).redis, app)
    except HomeportError as exc:
        return JSONResponse({"job": job.id, "warning": str(exc)}, status_code=202)
    return JSONResponse(
        {
            "job": job.id,
            "app": app,
            "target": target.version,
            "log": f"/api/apps/{app}/jobs/{job.id}/log",
        },
        status_code=202,
    )


async def config(request: Request) -> Response:
    """GET shows the app's config secrets masked; POST {"set": {...}, "unset": [...]}."""
    app = apps.check_app_name(request.path_params["app"])
    settings = state_of(request).settings
    # Imported on first use: the Kubernetes client is large, and most receivers never need it.
    from homeport.deployer import appconfig

    if request.method == "GET":
        shown = await asyncio.to_thread(appconfig.show, settings, app)
        return JSONResponse({"app": app, "config": shown})
    body = await read_capped(request, 256 * 1024)
    if body is None:
        return _error(413, "body over 256 KiB")
    try:
        data = parse_json(body or b"{}")
    except BadJSON as exc:
        return _error(400, f'{exc}; send {{"set": {{"KEY": "value"}}, "unset": ["KEY"]}}')
    if not isinstance(data, dict):
        return _error(400, 'send {"set": {"KEY": "value"}, "unset": ["KEY"]}')
    to_set = data.get("set") or {}
    to_unset = data.get("unset") or []
    if not isinstance(to_set, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in to_set.items()
    ):
        return _error(400, "set must map names to string values")
    if not isinstance(to_unset, list) or not all(isinstance(k, str) for k in to_unset):
        return _error(400, "unset must be a list of names")
    try:
        if to_set:
            await asyncio.to_thread(appconfig.set_values, settings, app, to_set)
        if to_unset:
            await asyncio.to_thread(appconfig.unset, settings, app, to_unset)
    except ValueError as exc:
        return _error(400, str(exc))
    shown = await asyncio.to_thread(appconfig.show, settings, app)
    return JSONResponse(
        {
            "app": app,
            "config": shown,
            "note": "takes effect with the next deploy; push or roll back to apply it",
        }
    )
