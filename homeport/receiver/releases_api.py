"""Release routes: the history, rollbacks and app config secrets.

A rollback is authorised by the token, or by a signature made with the webhook secret so
that a monitor's alert webhook can call it without holding the token. The signature covers
a timestamp, the method and the path as well as the body, and works once: a captured one
cannot roll back again, later, or another app.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from homeport import lifecycle, names
from homeport.lifecycle import runtime
from homeport.notify import signing
from homeport.receiver import replay
from homeport.receiver.api import authorized, existing_app, state_of
from homeport.receiver.state import BadJSON, client_address, parse_json, read_capped
from homeport.receiver.throttle import too_many
from homeport.records import db, releases

SIGNATURE_HEADER = "x-homeport-signature-256"
TIMESTAMP_HEADER = "x-homeport-timestamp"
# A signature is good this many seconds either side of its timestamp (clock skew included);
# each is accepted once, so it is remembered until it would be too old anyway.
SIGNATURE_WINDOW = 300
# A rollback body is at most {"version": N}: anything larger is not one.
MAX_ROLLBACK_BODY = 4096
HOW_TO_SIGN = (
    "send X-Homeport-Timestamp: <unix seconds> and X-Homeport-Signature-256: sha256=<hex "
    "HMAC-SHA256 with the webhook secret of: timestamp, newline, method, newline, path, "
    "newline, body>"
)
# Release numbers are SQLite integers (64-bit); a larger number cannot name one.
MAX_VERSION = 2**63 - 1


def signature_problem(request: Request, body: bytes) -> str | None:
    """None when the request carries a fresh, valid, unused signature; else what is wrong."""
    settings = state_of(request).settings
    if not settings.webhook_secret:
        return "signed rollbacks are off: set HOMEPORT_WEBHOOK_SECRET, or send the token"
    given = request.headers.get(SIGNATURE_HEADER, "")
    stamp = request.headers.get(TIMESTAMP_HEADER)
    if stamp is None:
        return f"the signature has no X-Homeport-Timestamp; {HOW_TO_SIGN}"
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return f"X-Homeport-Timestamp must be unix seconds; {HOW_TO_SIGN}"
    off = int(stamp) - time.time()
    if abs(off) > SIGNATURE_WINDOW:
        return (
            f"X-Homeport-Timestamp is {abs(off):.0f} s {'ahead of' if off > 0 else 'behind'} "
            f"homeport's clock (at most {SIGNATURE_WINDOW} s allowed); sign with the current "
            "time and check the clocks"
        )
    digest = signing.digest(settings.webhook_secret, stamp, request.method, request.url.path, body)
    if not hmac.compare_digest(given.encode(), f"sha256={digest}".encode()):
        return f"signature does not match; {HOW_TO_SIGN}"
    with db.connect(settings.data_dir) as conn:
        fresh = replay.use_signature(conn, digest, int(stamp) + SIGNATURE_WINDOW)
    if not fresh:
        return "this signature was used before; sign each request with a new timestamp"
    return None


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
    if not authorized(request):
        # Only requests with a signature get here without the token (see app.AuthGate).
        problem = signature_problem(request, body)
        if problem is not None:
            blocked = state_of(request).throttle.failed(client_address(request))
            if blocked:
                return too_many(blocked)
            return _error(401, problem)
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
    state = state_of(request)

    def submit() -> lifecycle.Submitted:
        return lifecycle.submit_rollback(
            state.settings, state.redis, app=app, version=version, source="api"
        )

    submitted = await asyncio.to_thread(submit)
    job = submitted.job
    return JSONResponse(
        {
            "job": job.id,
            "app": app,
            "target": submitted.target.version if submitted.target else None,
            "log": f"/api/apps/{app}/jobs/{job.id}/log",
        },
        status_code=202,
    )


async def config(request: Request) -> Response:
    """GET shows the app's config secrets masked; POST {"set": {...}, "unset": [...]} makes
    a release of the change on the live image (202 with its job), or only stores it with
    "deploy": false or before the app's first release (200 with a note)."""
    app = names.check_app_name(request.path_params["app"])
    state = state_of(request)
    settings = state.settings
    if request.method == "GET":
        shown = await asyncio.to_thread(runtime.config_names, settings, app)
        return JSONResponse({"app": app, "config": shown})
    body = await read_capped(request, 256 * 1024)
    if body is None:
        return _error(413, "body over 256 KiB")
    how = 'send {"set": {"KEY": "value"}, "unset": ["KEY"], "deploy": true}'
    try:
        data = parse_json(body or b"{}")
    except BadJSON as exc:
        return _error(400, f"{exc}; {how}")
    if not isinstance(data, dict):
        return _error(400, how)
    to_set = data.get("set") or {}
    to_unset = data.get("unset") or []
    deploy = data.get("deploy", True)
    if not isinstance(to_set, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in to_set.items()
    ):
        return _error(400, "set must map names to string values")
    if not isinstance(to_unset, list) or not all(isinstance(k, str) for k in to_unset):
        return _error(400, "unset must be a list of names")
    if not isinstance(deploy, bool):
        return _error(400, "deploy must be true (make a release now) or false (only store)")
    if not to_set and not to_unset:
        return _error(400, f"nothing to change; {how}")

    def submit() -> lifecycle.Submitted | lifecycle.Stored:
        return lifecycle.submit_config(
            settings,
            state.redis,
            app=app,
            values=to_set,
            unset=to_unset,
            deploy=deploy,
            source="api",
        )

    submitted = await asyncio.to_thread(submit)
    shown = {name: runtime.CONFIG_MASK for name in submitted.config}
    if isinstance(submitted, lifecycle.Stored):
        return JSONResponse({"app": app, "config": shown, "note": submitted.note})
    job = submitted.job
    return JSONResponse(
        {
            "app": app,
            "config": shown,
            "job": job.id,
            "base": submitted.target.version if submitted.target else None,
            "log": f"/api/apps/{app}/jobs/{job.id}/log",
        },
        status_code=202,
    )
