"""Cron routes: the live release's schedules with their last runs, and a run started now."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from homeport import lifecycle, schedules
from homeport.lifecycle import runtime
from homeport.receiver.api import existing_app, state_of
from homeport.records import releases
from homeport.spec import RunSpec


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


async def list_cron(request: Request) -> Response:
    """GET: each cron entry of the live release, when it next runs, its newest run."""
    app = existing_app(request)
    settings = state_of(request).settings
    live = await asyncio.to_thread(releases.live, settings.data_dir, app)
    spec = RunSpec.from_dict(live.config.get("spec") or {}) if live else RunSpec()
    runs: dict[str, dict[str, Any]] = {}
    if spec.cron:
        runs = await asyncio.to_thread(runtime.cron_runs, settings, app)
    now = time.time()
    entries = [
        {
            "name": name,
            "schedule": entry.schedule,
            "command": list(entry.command),
            "timeout": entry.timeout,
            "next_run": _iso(schedules.next_run(entry.schedule, now)),
            "last_run": runs.get(name),
        }
        for name, entry in sorted(spec.cron.items())
    ]
    return JSONResponse({"app": app, "release": live.version if live else None, "cron": entries})


async def start_run(request: Request) -> Response:
    """POST: start a run of one cron entry now; 202 with the run's Job name."""
    app = existing_app(request)
    name: str = request.path_params["name"]
    settings = state_of(request).settings
    job = await asyncio.to_thread(lifecycle.start_cron_run, settings, app, name)
    return JSONResponse({"app": app, "cron": name, "job": job}, status_code=202)
