"""The JSON API under /api: apps, jobs, their logs, and the repository an app is bound to.

Every route needs the token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from homeport import apps, names
from homeport.errors import NotFound
from homeport.receiver import binding
from homeport.receiver.auth import bearer_token, same
from homeport.receiver.state import State, read_capped
from homeport.records import joblog, jobs


def state_of(request: Request) -> State:
    state: State = request.app.state.homeport
    return state


def authorized(request: Request) -> bool:
    state: State = request.scope["app"].state.homeport
    return same(bearer_token(request.headers.get("authorization")), state.token)


def unauthorized() -> JSONResponse:
    return JSONResponse(
        {"error": "wrong or missing token; send Authorization: Bearer <token>"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _app_name(request: Request) -> str:
    name: str = request.path_params["app"]
    return names.check_app_name(name)


def existing_app(request: Request) -> str:
    name = _app_name(request)
    if not apps.exists(state_of(request).settings.data_dir, name):
        raise NotFound(f"app {name!r} does not exist; push to it to create it")
    return name


async def list_apps(request: Request) -> Response:
    data_dir = state_of(request).settings.data_dir

    def collect() -> list[dict[str, Any]]:
        result = []
        for name in apps.list_apps(data_dir):
            recent = jobs.for_app(data_dir, name, limit=1)
            result.append({"name": name, "last_job": recent[0].public() if recent else None})
        return result

    return JSONResponse({"apps": await asyncio.to_thread(collect)})


async def list_jobs(request: Request) -> Response:
    app = existing_app(request)
    data_dir = state_of(request).settings.data_dir
    found = await asyncio.to_thread(jobs.for_app, data_dir, app)
    return JSONResponse({"jobs": [j.public() for j in found]})


def _job(request: Request) -> jobs.Job:
    app = existing_app(request)
    job = jobs.get(state_of(request).settings.data_dir, request.path_params["job"])
    if job.app != app:
        raise NotFound(f"job {job.id!r} does not belong to {app!r}")
    return job


async def get_job(request: Request) -> Response:
    return JSONResponse(_job(request).public())


async def job_log(request: Request) -> Response:
    """The job's output, streamed; ?follow=1 waits for more until the job ends (or times out)."""
    job = _job(request)
    state = state_of(request)
    settings = state.settings
    path = joblog.log_path(settings.data_dir, job.app, job.id)
    follow = request.query_params.get("follow") in ("1", "true", "yes")

    def ended() -> bool:
        return (not follow) or jobs.is_ended(settings.data_dir, job.id)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in joblog.follow_async(
            path, ended, timeout=settings.job_wait, stopping=state.stopping.is_set
        ):
            yield chunk

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


async def source(request: Request) -> Response:
    """GET, PUT {"repository": "github:me/blog"} or DELETE the app's repository binding.

    A name can be bound before its first webhook creates the app.
    """
    app = _app_name(request)
    data_dir = state_of(request).settings.data_dir
    if request.method == "PUT":
        body = await read_capped(request, 4096)
        if body is None:
            return JSONResponse({"error": "body over 4096 bytes"}, status_code=413)
        try:
            data: Any = json.loads(body)
        except ValueError:
            data = None
        repository = data.get("repository") if isinstance(data, dict) else None
        if not isinstance(repository, str):
            return JSONResponse(
                {"error": 'send {"repository": "PROVIDER:OWNER/NAME"}, e.g. "github:me/blog"'},
                status_code=400,
            )
        await asyncio.to_thread(binding.bind, data_dir, app, repository)
    else:
        known = await asyncio.to_thread(binding.lookup, data_dir, app)
        if known is None and not apps.exists(data_dir, app):
            raise NotFound(f"app {app!r} does not exist; push to it to create it")
        if request.method == "DELETE":
            await asyncio.to_thread(binding.unbind, data_dir, app)
    bound = await asyncio.to_thread(binding.lookup, data_dir, app)
    return JSONResponse({"app": app, "repository": bound})
