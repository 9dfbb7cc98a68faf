"""The status page: server-rendered HTML for people, beside the JSON API for programs.

A browser logs in with the token through a form and then holds a signed session cookie
(homeport.receiver.session); `Authorization: Bearer <token>` works too. Every POST from a
session carries its CSRF token. Failed logins and wrong Bearer tokens count toward the same
throttle as the API's. Errors are pages that say what to do, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from homeport import apps, lifecycle, names
from homeport.errors import HomeportError, InvalidInput, NotFound, Unavailable, http_status
from homeport.lifecycle import runtime
from homeport.receiver import api, session
from homeport.receiver.auth import bearer_token, same
from homeport.receiver.overview import detail, summaries
from homeport.receiver.state import State, client_address, read_capped
from homeport.records import joblog, jobs, releases

# A page form holds a few short fields; anything larger is not one of ours.
MAX_FORM_BYTES = 8192
MAX_FORM_FIELDS = 16
# The log shown in a page without JavaScript: its last part, so a huge log stays a page.
SNAPSHOT_CHARS = 256 * 1024
# Release numbers are SQLite integers; a longer string cannot name one.
MAX_VERSION_DIGITS = 18
# Pages show live data and must not be framed (a rollback button under someone else's page).
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _ago(ts: float | None) -> str:
    if not ts:
        return ""
    seconds = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else ""


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("homeport", "templates"),
        autoescape=select_autoescape(default=True),
    )
    env.filters["ago"] = _ago
    env.filters["when"] = _when
    env.filters["short"] = lambda sha: (sha or "")[:12]
    return env


templates = Jinja2Templates(env=_environment())


@dataclass(frozen=True)
class Visit:
    """Who asks: a logged-in browser (with its session) or a Bearer token holder."""

    session: session.Session | None
    bearer: bool


Handler = Callable[[Request, Visit], Awaitable[Response]]


def _state(request: Request) -> State:
    state: State = request.app.state.homeport
    return state


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    visit: Visit | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A page, with the security headers every page carries."""
    full = {
        "visit": visit,
        "csrf": visit.session.csrf if visit and visit.session else "",
        **context,
    }
    response = templates.TemplateResponse(
        request, name, full, status_code=status, headers={**HEADERS, **(headers or {})}
    )
    return response


def error_page(
    request: Request,
    status: int,
    title: str,
    message: str,
    visit: Visit | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "error.html",
        {"title": title, "message": message},
        status=status,
        visit=visit,
        headers=headers,
    )


def _homeport_error(request: Request, exc: HomeportError, visit: Visit | None) -> Response:
    status = http_status(exc)
    if isinstance(exc, Unavailable):
        title = f"{exc.dependency} is unavailable"
        return error_page(request, status, title, str(exc), visit, headers={"Retry-After": "5"})
    titles = {400: "Bad request", 404: "Not found", 409: "Not possible", 413: "Too large"}
    return error_page(request, status, titles.get(status, "Refused"), str(exc), visit)


def _too_many(request: Request, seconds: int) -> Response:
    return error_page(
        request,
        429,
        "Too many failed logins",
        f"too many failed authentications from this address; try again in {seconds} s "
        "with the right token",
        headers={"Retry-After": str(seconds)},
    )


def _local_path(target: str | None) -> str:
    """Where to go after logging in: a path on this server only (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if len(target) > 2000 or any(ch < " " for ch in target):
        return "/"
    return target


async def read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded form's fields (first value of each); None when it is too large."""
    body = await read_capped(request, MAX_FORM_BYTES)
    if body is None:
        return None
    try:
        parsed = parse_qs(
            body.decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError:
        return None
    return {key: values[0] for key, values in parsed.items()}


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate the visit, check a POST's CSRF token, and turn errors into pages."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        state = _state(request)
        client = client_address(request)
        blocked = state.throttle.retry_after(client)
        if blocked:
            return _too_many(request, blocked)
        current = session.read(request, state.token)
        if "authorization" in request.headers:
            if not same(bearer_token(request.headers.get("authorization")), state.token):
                blocked = state.throttle.failed(client)
                if blocked:
                    return _too_many(request, blocked)
                return error_page(
                    request,
                    401,
                    "Wrong token",
                    "wrong token; send Authorization: Bearer <token>, or log in at /login",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            visit = Visit(current, bearer=True)
        elif current is not None and current.logged_in:
            visit = Visit(current, bearer=False)
        elif request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        else:
            return error_page(request, 401, "Not logged in", "log in at /login first")
        if request.method == "POST":
            form = await read_form(request)
            if form is None:
                return error_page(request, 413, "Too large", "the form is too large", visit)
            # A Bearer token is never sent by a browser on its own: no forgery to guard against.
            if not visit.bearer and not session.csrf_ok(visit.session, form.get("csrf")):
                return error_page(
                    request,
                    403,
                    "Form refused",
                    "the form's security token is missing or stale; reload the page and try again",
                    visit,
                )
            request.state.form = form
        try:
            return await handler(request, visit)
        except HomeportError as exc:
            return _homeport_error(request, exc, visit)

    return endpoint


# -- pages -------------------------------------------------------------------------------


@page
async def status(request: Request, visit: Visit) -> Response:
    found = await asyncio.to_thread(summaries, _state(request).settings.data_dir)
    return render(request, "status.html", {"apps": found}, visit=visit)


def _existing(request: Request) -> str:
    name = names.check_app_name(request.path_params["app"])
    if not apps.exists(_state(request).settings.data_dir, name):
        raise NotFound(f"app {name!r} does not exist; push to it to create it")
    return name


@page
async def app_page(request: Request, visit: Visit) -> Response:
    state = _state(request)
    name = _existing(request)
    shown = await asyncio.to_thread(detail, state.settings.data_dir, name)
    config: list[str] = []
    config_error = ""
    status_code = 200
    try:
        config = list(await asyncio.to_thread(runtime.config_names, state.settings, name))
    except HomeportError as exc:
        config_error = str(exc)
        if isinstance(exc, Unavailable):
            config_error = f"{exc.dependency} is unavailable: {exc}"
            status_code = 503
    return render(
        request,
        "app.html",
        {
            "app": shown,
            "config": config,
            "config_error": config_error,
            "mask": runtime.CONFIG_MASK,
        },
        status=status_code,
        visit=visit,
    )


def _job(request: Request) -> jobs.Job:
    app = _existing(request)
    job = jobs.get(_state(request).settings.data_dir, request.path_params["job"])
    if job.app != app:
        raise NotFound(f"job {job.id!r} does not belong to {app!r}")
    return job


def _snapshot(request: Request, job: jobs.Job) -> str:
    path = joblog.log_path(_state(request).settings.data_dir, job.app, job.id)
    text = "\n".join(joblog.follow(path, lambda: True))
    if len(text) > SNAPSHOT_CHARS:
        text = "[earlier output left out]\n" + text[-SNAPSHOT_CHARS:]
    return text


@page
async def job_page(request: Request, visit: Visit) -> Response:
    job = await asyncio.to_thread(_job, request)
    text = await asyncio.to_thread(_snapshot, request, job)
    return render(request, "job.html", {"job": job, "log": text}, visit=visit)


@page
async def job_log(request: Request, visit: Visit) -> Response:
    """The job's output as the API streams it, for the job page's script."""
    return await api.job_log(request)


def _version(raw: str | None) -> int:
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > MAX_VERSION_DIGITS:
        raise InvalidInput("choose a release to roll back to from the app's page")
    version = int(raw)
    if version < 1:
        raise InvalidInput("release numbers start at v1")
    return version


@page
async def confirm_rollback(request: Request, visit: Visit) -> Response:
    state = _state(request)
    name = _existing(request)
    version = _version(request.query_params.get("version"))
    target = await asyncio.to_thread(releases.get, state.settings.data_dir, name, version)
    live = await asyncio.to_thread(releases.live, state.settings.data_dir, name)
    return render(
        request, "rollback.html", {"app": name, "target": target, "live": live}, visit=visit
    )


@page
async def rollback(request: Request, visit: Visit) -> Response:
    state = _state(request)
    name = _existing(request)
    form: dict[str, str] = request.state.form
    version = _version(form.get("version"))

    def submit() -> lifecycle.Submitted:
        return lifecycle.submit_rollback(
            state.settings, state.redis, app=name, version=version, source="page"
        )

    submitted = await asyncio.to_thread(submit)
    return RedirectResponse(f"/apps/{name}/jobs/{submitted.job.id}", status_code=303)


# -- logging in and out ---------------------------------------------------------------------


def _secure(request: Request) -> bool:
    return session.secure_request(request, _state(request).settings.public_url)


async def login_form(request: Request) -> Response:
    state = _state(request)
    current = session.read(request, state.token) or session.new()
    target = _local_path(request.query_params.get("next"))
    response = render(
        request,
        "login.html",
        {"next": target, "csrf": current.csrf, "failed": False},
    )
    session.store(response, current, state.token, secure=_secure(request))
    return response


async def login(request: Request) -> Response:
    state = _state(request)
    client = client_address(request)
    blocked = state.throttle.retry_after(client)
    if blocked:
        return _too_many(request, blocked)
    form = await read_form(request)
    if form is None:
        return error_page(request, 413, "Too large", "the login form is too large")
    current = session.read(request, state.token)
    target = _local_path(form.get("next"))
    if not session.csrf_ok(current, form.get("csrf")):
        return error_page(
            request,
            403,
            "Form refused",
            "the login form's security token is missing or stale; open /login again (and let "
            "this site keep cookies)",
        )
    if not same(form.get("token"), state.token):
        blocked = state.throttle.failed(client)
        if blocked:
            return _too_many(request, blocked)
        assert current is not None
        return render(
            request,
            "login.html",
            {"next": target, "csrf": current.csrf, "failed": True},
            status=401,
        )
    response = RedirectResponse(target, status_code=303, headers=HEADERS)
    session.store(response, session.new(logged_in=True), state.token, secure=_secure(request))
    return response


@page
async def logout(request: Request, visit: Visit) -> Response:
    response = RedirectResponse("/login", status_code=303, headers=HEADERS)
    session.clear(response, secure=_secure(request))
    return response


def routes() -> list[BaseRoute]:
    """The status page's routes, for receiver.app."""
    # Compile the templates now, at start-up, not in the first visitor's request.
    for name in templates.env.list_templates(extensions=["html"]):
        templates.env.get_template(name)
    return [
        Route("/", status),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/apps/{app}", app_page),
        Route("/apps/{app}/rollback", confirm_rollback, methods=["GET"]),
        Route("/apps/{app}/rollback", rollback, methods=["POST"]),
        Route("/apps/{app}/jobs/{job}", job_page),
        Route("/apps/{app}/jobs/{job}/log", job_log),
        Mount("/static", app=StaticFiles(packages=[("homeport", "static")]), name="static"),
    ]
