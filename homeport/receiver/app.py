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

from homeport.errors import HomeportError, Unavailable, http_status
from homeport.receiver import (
    api,
    credentials_api,
    cron_api,
    destroy_api,
    metrics_api,
    releases_api,
    rollback_urls_api,
    runtime_api,
    webhooks,
)
from homeport.receiver.git import asgi_git_app
from homeport.receiver.pages import routes as page_routes
from homeport.receiver.push.update import PushContext
from homeport.receiver.state import State, client_address
from homeport.receiver.stopping import Stopping
from homeport.receiver.throttle import Throttle, too_many
from homeport.records import db
from homeport.settings import Settings

log = logging.getLogger(__name__)

# The one route a signature may reach without the token: POST /api/apps/{app}/rollback.
_ROLLBACK_PATH = re.compile(r"/api/apps/[^/]+/rollback")


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


# Routes that take credentials; an address blocked for failed authentications gets 429 there.
_GUARDED = ("/api/", "/git/", "/hooks/", "/metrics")


class AuthGate:
    """Every /api route needs the token; checked before routing, so no route can forget.

    An address past the failed-authentication limit is refused on every route that takes
    credentials, before they are compared: otherwise guessing would go on, 429 or not.
    """

    def __init__(self, app: ASGIApp, throttle: Throttle) -> None:
        self.app = app
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(_GUARDED):
            request = Request(scope)
            client = client_address(request)
            blocked = self.throttle.retry_after(client)
            if blocked:
                await too_many(blocked)(scope, receive, send)
                return
            # A signed rollback is checked by its route, against the request it signs.
            signed_rollback = (
                scope["method"] == "POST"
                and _ROLLBACK_PATH.fullmatch(scope["path"]) is not None
                and releases_api.SIGNATURE_HEADER in request.headers
            )
            if (
                scope["path"].startswith("/api/")
                and not signed_rollback
                and not api.authorized(request)
            ):
                # No Authorization header is not a guess; a wrong token is.
                if "authorization" in request.headers:
                    blocked = self.throttle.failed(client)
                    if blocked:
                        await too_many(blocked)(scope, receive, send)
                        return
                await api.unauthorized()(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _homeport_error(request: Request, exc: Exception) -> Response:
    # One place maps the error kinds to statuses: bad input 400, unknown 404, conflict 409,
    # too large 413, a dependency down 503 (naming it).
    assert isinstance(exc, HomeportError)
    status = http_status(exc)
    body: dict[str, str] = {"error": str(exc)}
    if isinstance(exc, Unavailable):
        body["unavailable"] = exc.dependency
    return JSONResponse(
        body, status_code=status, headers={"Retry-After": "5"} if status == 503 else None
    )


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
    throttle = Throttle()
    stopping = Stopping()
    state = State(settings=settings, token=token, redis=conn, throttle=throttle, stopping=stopping)
    routes = [
        Route("/healthz", healthz),
        # Before /hooks/{provider}: a rollback hook's path has three more segments.
        Route("/hooks/rollback/{hook}/{secret}", rollback_urls_api.fire, methods=["POST"]),
        Route("/hooks/{provider}", webhooks.receive, methods=["POST"]),
        Route("/metrics", metrics_api.metrics),
        Route("/api/apps", api.list_apps),
        Route("/api/apps/{app}", destroy_api.destroy, methods=["DELETE"]),
        Route("/api/apps/{app}/jobs", api.list_jobs),
        Route("/api/apps/{app}/jobs/{job}", api.get_job),
        Route("/api/apps/{app}/jobs/{job}/log", api.job_log),
        Route("/api/apps/{app}/releases", releases_api.list_releases),
        Route("/api/apps/{app}/rollback", releases_api.rollback, methods=["POST"]),
        Route("/api/apps/{app}/config", releases_api.config, methods=["GET", "POST"]),
        Route("/api/apps/{app}/source", api.source, methods=["GET", "PUT", "DELETE"]),
        Route("/api/apps/{app}/cron", cron_api.list_cron),
        Route("/api/apps/{app}/cron/{name}/runs", cron_api.start_run, methods=["POST"]),
        Route("/api/apps/{app}/hooks", rollback_urls_api.hooks, methods=["GET", "POST"]),
        Route("/api/apps/{app}/hooks/{hook}", rollback_urls_api.remove, methods=["DELETE"]),
        Route("/api/hooks/{hook}", rollback_urls_api.remove, methods=["DELETE"]),
        Route(
            "/api/credentials",
            credentials_api.credentials_route,
            methods=["GET", "PUT", "DELETE"],
        ),
        Route(
            "/api/credentials/ssh-keys/{app}",
            credentials_api.ssh_key,
            methods=["GET", "POST", "DELETE"],
        ),
        Route("/api/credentials/ssh-hosts", credentials_api.ssh_host, methods=["POST"]),
        Route("/api/apps/{app}/runs", runtime_api.create_run, methods=["POST"]),
        Route("/api/apps/{app}/runs/{run}", runtime_api.get_run, methods=["GET", "DELETE"]),
        Route("/api/apps/{app}/runs/{run}/log", runtime_api.run_log),
        Route("/api/apps/{app}/logs", runtime_api.app_logs),
        Route("/api/apps/{app}/ps", runtime_api.app_ps),
        Mount(
            "/git", app=asgi_git_app(PushContext(settings, conn, stopping.is_set), token, throttle)
        ),
        *page_routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AuthGate, throttle=throttle)],
        exception_handlers={
            HomeportError: _homeport_error,
            HTTPException: _http_error,
            Exception: _crash,
        },
    )
    app.state.homeport = state
    return app
