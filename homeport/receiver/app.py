"""The starlette application: routes, auth and error answers."""

from __future__ import annotations

import logging
import re

import redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from homeport import db
from homeport.apps import AppNameError
from homeport.config import Settings
from homeport.errors import HomeportError, NotFound
from homeport.hooks.update import PushContext
from homeport.receiver import api, releases_api, webhooks
from homeport.receiver.git import asgi_git_app
from homeport.receiver.state import State

log = logging.getLogger(__name__)

# The one route a signature may reach without the token: POST /api/apps/{app}/rollback.
_ROLLBACK_PATH = re.compile(r"/api/apps/[^/]+/rollback")


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


class ApiAuth:
    """Every /api route needs the token; checked before routing, so no route can forget."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            request = Request(scope)
            # A signed rollback is checked by its route, against the body it signs. Only that
            # exact route is exempt: any other path would answer without the token, and its
            # errors would tell a stranger which apps exist.
            signed_rollback = (
                scope["method"] == "POST"
                and _ROLLBACK_PATH.fullmatch(scope["path"]) is not None
                and releases_api.SIGNATURE_HEADER in request.headers
            )
            if not signed_rollback and not api.authorized(request):
                await api.unauthorized()(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=404)


async def _bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


async def _crash(request: Request, exc: Exception) -> Response:
    # A bug, never bad input: the operator gets the traceback in the log, the client a line.
    log.exception("request %s %s failed", request.method, request.url.path)
    return JSONResponse({"error": "internal error; see the homeport log"}, status_code=500)


def create_app(settings: Settings, token: str, conn: redis.Redis | None = None) -> Starlette:
    db.init(settings.data_dir)
    db.checkpoint_in_background(settings.data_dir)
    conn = conn or redis.Redis.from_url(settings.queue_url)
    state = State(settings=settings, token=token, redis=conn)
    routes = [
        Route("/healthz", healthz),
        Route("/hooks/{provider}", webhooks.receive, methods=["POST"]),
        Route("/api/apps", api.list_apps),
        Route("/api/apps/{app}/jobs", api.list_jobs),
        Route("/api/apps/{app}/jobs/{job}", api.get_job),
        Route("/api/apps/{app}/jobs/{job}/log", api.job_log),
        Route("/api/apps/{app}/releases", releases_api.list_releases),
        Route("/api/apps/{app}/rollback", releases_api.rollback, methods=["POST"]),
        Route("/api/apps/{app}/config", releases_api.config, methods=["GET", "POST"]),
        Mount("/git", app=asgi_git_app(PushContext(settings, conn), token)),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(ApiAuth)],
        exception_handlers={
            NotFound: _not_found,
            AppNameError: _bad_request,
            HomeportError: _bad_request,
            HTTPException: _http_error,
            Exception: _crash,
        },
    )
    app.state.homeport = state
    return app
