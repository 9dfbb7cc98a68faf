"""Rollback hook routes: managing hooks under /api (token), and the secret URL monitors call.

POST /hooks/rollback/{hook}/{secret} needs no token: the secret in the path is the
credential. A wrong id or secret is 404 either way (and counts as a failed guess).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from homeport import lifecycle
from homeport.lifecycle import rollback_urls
from homeport.receiver.api import existing_app, state_of
from homeport.receiver.state import BadJSON, client_address, parse_json, read_capped
from homeport.receiver.throttle import too_many

MAX_BODY = 4096


async def hooks(request: Request) -> Response:
    """GET lists the app's hooks; POST {"rollback": true, "within": "1h"} makes one."""
    app = existing_app(request)
    settings = state_of(request).settings
    if request.method == "GET":
        found = await asyncio.to_thread(rollback_urls.for_app, settings.data_dir, app)
        return JSONResponse({"hooks": [h.to_dict() for h in found]})
    body = await read_capped(request, MAX_BODY)
    if body is None:
        return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
    usage = 'send {"rollback": true, "within": "1h"}'
    try:
        data: Any = parse_json(body or b"{}")
    except BadJSON as exc:
        return JSONResponse({"error": f"{exc}; {usage}"}, status_code=400)
    if not isinstance(data, dict) or data.get("rollback") is not True:
        return JSONResponse(
            {"error": f"rollback is the one kind of hook there is; {usage}"}, status_code=400
        )
    within = rollback_urls.parse_within(data.get("within", rollback_urls.DEFAULT_WITHIN))
    hook, secret = await asyncio.to_thread(rollback_urls.create, settings.data_dir, app, within)
    return JSONResponse(
        {**hook.to_dict(), "url": settings.public_url + rollback_urls.path_of(hook, secret)},
        status_code=201,
    )


async def remove(request: Request) -> Response:
    """DELETE a hook by id (under its app, or on its own)."""
    settings = state_of(request).settings
    if "app" in request.path_params:
        existing_app(request)
    hook = await asyncio.to_thread(
        rollback_urls.remove, settings.data_dir, request.path_params["hook"]
    )
    return JSONResponse({"removed": hook.to_dict()})


async def fire(request: Request) -> Response:
    """A monitor's alert: 202 with the rollback job, 200 saying why nothing was done."""
    state = state_of(request)
    settings = state.settings
    body = await read_capped(request, settings.max_webhook_bytes)
    if body is None:
        return JSONResponse(
            {"error": f"body over {settings.max_webhook_bytes} bytes"}, status_code=413
        )
    hook = await asyncio.to_thread(
        rollback_urls.find,
        settings.data_dir,
        request.path_params["hook"],
        request.path_params["secret"],
    )
    if hook is None:
        blocked = state.throttle.failed(client_address(request))
        if blocked:
            return too_many(blocked)
        return JSONResponse(
            {"error": "no such hook; `homeport hooks list APP` shows the app's hooks"},
            status_code=404,
        )
    try:
        payload: Any = parse_json(body) if body.strip() else None
    except BadJSON:
        # Monitors that send text or forms still mean "it is broken".
        payload = None
    done = await asyncio.to_thread(rollback_urls.fire, settings, state.redis, hook, payload)
    if isinstance(done, lifecycle.Submitted):
        job = done.job
        return JSONResponse(
            {
                "rolled_back": True,
                "app": hook.app,
                "job": job.id,
                "target": done.target.version if done.target else None,
                "log": f"/api/apps/{hook.app}/jobs/{job.id}/log",
            },
            status_code=202,
        )
    return JSONResponse({"rolled_back": False, "app": hook.app, "reason": done})
