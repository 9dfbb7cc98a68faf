"""GET /metrics: Prometheus text format; the token unless HOMEPORT_METRICS_PUBLIC=true."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from homeport.receiver.api import authorized, state_of, unauthorized
from homeport.receiver.state import client_address
from homeport.receiver.throttle import too_many

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def metrics(request: Request) -> Response:
    state = state_of(request)
    if not state.settings.metrics_public and not authorized(request):
        # No Authorization header is not a guess; a wrong token is.
        if "authorization" in request.headers:
            blocked = state.throttle.failed(client_address(request))
            if blocked:
                return too_many(blocked)
        return unauthorized()
    # Imported on first scrape: an unscraped homeport never loads prometheus-client.
    from homeport.lifecycle import metrics as collector

    body = await asyncio.to_thread(collector.exposition, state.settings.data_dir)
    return Response(body, media_type=CONTENT_TYPE)
