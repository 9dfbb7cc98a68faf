"""DELETE /api/apps/{app} with {"confirm": "APP"}: remove an app (homeport apps destroy)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from homeport import lifecycle
from homeport.receiver.api import existing_app, state_of
from homeport.receiver.state import BadJSON, parse_json, read_capped

# The body is {"confirm": "APP", "volumes": true}: anything larger is not one.
MAX_BODY = 4096


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def destroy(request: Request) -> Response:
    app = existing_app(request)
    body = await read_capped(request, MAX_BODY)
    if body is None:
        return _error(413, f"body over {MAX_BODY} bytes")
    how = f'send {{"confirm": "{app}"}} (and "volumes": true to delete its volumes too)'
    try:
        data: Any = parse_json(body or b"{}")
    except BadJSON as exc:
        return _error(400, f"{exc}; {how}")
    if not isinstance(data, dict) or data.get("confirm") != app:
        # Removal cannot be undone: the caller names the app a second time.
        return _error(400, f"removing {app} needs its name as confirmation; {how}")
    volumes = data.get("volumes", False)
    if not isinstance(volumes, bool):
        return _error(400, "volumes must be true or false")
    settings = state_of(request).settings
    done = await asyncio.to_thread(lifecycle.destroy_app, settings, app, delete_volumes=volumes)
    return JSONResponse(done.to_dict())
