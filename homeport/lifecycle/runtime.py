"""The running app, as the receiver sees it: one-off runs, pod logs, ps, config names, cron runs.

The receiver's one way to the cluster. Reads answer from what the cluster shows (no records are
written); a one-off run starts from the live release, and its pod is its record.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from homeport.deployer import appconfig, cron, podlogs, ps, runs
from homeport.deployer.runs import RunStatus
from homeport.errors import Conflict
from homeport.records import releases
from homeport.settings import Settings

# How a config value is shown: never the value itself.
CONFIG_MASK = appconfig.MASK
parse_since = podlogs.parse_since
parse_tail = podlogs.parse_tail


def start_run(
    settings: Settings, *, app: str, command: object, process: str = "web"
) -> dict[str, Any]:
    """Start a one-off command from the app's live release; its status (with the run id)."""
    argv = runs.check_command(command)
    release = releases.live(settings.data_dir, app)
    if release is None:
        raise Conflict(
            f"app '{app}' has no live release to run a command in; push to deploy it first"
            f" (`homeport releases {app}` shows its releases)"
        )
    status: dict[str, Any] = runs.start(settings, release, argv, process).to_dict()
    return status


def run_status(settings: Settings, app: str, run_id: str) -> RunStatus:
    return runs.status(settings, app, run_id)


def stop_run(settings: Settings, app: str, run_id: str) -> RunStatus:
    return runs.stop(settings, app, run_id)


def check_run(settings: Settings, app: str, run_id: str) -> None:
    """NotFound unless the app has a run `run_id`."""
    runs.exists(settings, app, run_id)


def run_output(
    settings: Settings, app: str, run_id: str, follow: bool, stop: threading.Event
) -> Iterator[bytes]:
    return runs.output(settings, app, run_id, follow, stop)


def check_process(settings: Settings, app: str, process: str | None) -> None:
    """NotFound unless the app runs `process` (None: web)."""
    podlogs.check_process(settings, app, process)


def recent_logs(
    settings: Settings, app: str, *, process: str | None, since: int | None, tail: int | None
) -> list[bytes]:
    return podlogs.recent(settings, app, process=process, since=since, tail=tail)


def follow_logs(
    settings: Settings,
    app: str,
    *,
    process: str | None,
    since: int | None,
    tail: int | None,
    stop: threading.Event,
) -> Iterator[bytes]:
    return podlogs.follow(settings, app, process=process, since=since, tail=tail, stop=stop)


def processes(settings: Settings, app: str) -> dict[str, Any]:
    """The app's processes and pods, as `homeport ps` shows them."""
    return ps.ps(settings, app)


def config_names(settings: Settings, app: str) -> dict[str, str]:
    """The app's config names, each with CONFIG_MASK for a value."""
    return appconfig.show(settings, app)


def cron_runs(settings: Settings, app: str) -> dict[str, dict[str, Any]]:
    """The newest run of each of the app's cron entries."""
    return cron.runs(settings, app)
