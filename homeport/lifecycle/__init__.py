"""The application layer: the one door through which work enters, the one writer of records.

Work enters through `submit_deploy`, `submit_rollback` and `submit_config` (git push, webhooks,
the API and the CLI all call them), and a cron run started by hand through `start_cron_run`.
A job's runner (pipeline.run_app) then moves the job and its release through their states;
the builder and the deployer only report outcomes. An app leaves through `destroy_app`.

    intake.py     submissions: record and queue as one step, dedup, rollback targets
    queue.py      one runner per app on rq, its lock and heartbeat
    pipeline.py   the runner: fetch, build, release, retention, one stage after another
    runner.py     a runner's jobs: claim, supersede, succeed, fail; recovery of dead runners
    rollout.py    releases: deploy, rollback and config releases, and settling stuck ones
    retention.py  which releases keep their images and Secrets
    removal.py    removing an app
    runtime.py    the running app for the receiver: runs, logs, ps, config names, cron runs
    announce.py   events for the notification targets
    metrics.py    Prometheus metrics, counted from the records when scraped
    rollback_urls.py, cron_watch.py   secret rollback URLs for monitors; failed cron runs

Job:      queued -> running -> succeeded | failed;  queued -> superseded | failed (not queued)
          running -> superseded (a newer job was queued before this one's rollout)
Release:  deploying -> live -> superseded | rolled_back;  deploying -> failed | superseded

The names below are this package's surface. Each is loaded with its module on first use:
the receiver imports the package for intake and never loads the rollout and retention side
(the builder's Docker SDK among it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from homeport.lifecycle.announce import announce_cron_failure as announce_cron_failure
    from homeport.lifecycle.common import SHUTDOWN_REASON as SHUTDOWN_REASON
    from homeport.lifecycle.common import WEBHOOK_SOURCES as WEBHOOK_SOURCES
    from homeport.lifecycle.common import Emit as Emit
    from homeport.lifecycle.common import ReleaseFailed as ReleaseFailed
    from homeport.lifecycle.common import Superseded as Superseded
    from homeport.lifecycle.common import output as output
    from homeport.lifecycle.intake import Duplicate as Duplicate
    from homeport.lifecycle.intake import Stored as Stored
    from homeport.lifecycle.intake import Submitted as Submitted
    from homeport.lifecycle.intake import rollback_target as rollback_target
    from homeport.lifecycle.intake import seen as seen
    from homeport.lifecycle.intake import start_cron_run as start_cron_run
    from homeport.lifecycle.intake import submit_config as submit_config
    from homeport.lifecycle.intake import submit_deploy as submit_deploy
    from homeport.lifecycle.intake import submit_rollback as submit_rollback
    from homeport.lifecycle.removal import destroy_app as destroy_app
    from homeport.lifecycle.retention import keep_releases as keep_releases
    from homeport.lifecycle.retention import retained as retained
    from homeport.lifecycle.rollout import config_release as config_release
    from homeport.lifecycle.rollout import deploy_release as deploy_release
    from homeport.lifecycle.rollout import rollback_release as rollback_release
    from homeport.lifecycle.rollout import settle as settle
    from homeport.lifecycle.rollout import settle_abandoned as settle_abandoned
    from homeport.lifecycle.runner import check_newest as check_newest
    from homeport.lifecycle.runner import claim as claim
    from homeport.lifecycle.runner import fail as fail
    from homeport.lifecycle.runner import hand_over as hand_over
    from homeport.lifecycle.runner import newer_queued as newer_queued
    from homeport.lifecycle.runner import record_image as record_image
    from homeport.lifecycle.runner import recover as recover
    from homeport.lifecycle.runner import stage as stage
    from homeport.lifecycle.runner import stopped as stopped
    from homeport.lifecycle.runner import succeed as succeed
    from homeport.lifecycle.runner import supersede as supersede
    from homeport.lifecycle.runtime import start_run as start_run

_HOMES = {
    "announce": ("announce_cron_failure",),
    "common": (
        "SHUTDOWN_REASON",
        "WEBHOOK_SOURCES",
        "Emit",
        "ReleaseFailed",
        "Superseded",
        "output",
    ),
    "intake": (
        "Duplicate",
        "Stored",
        "Submitted",
        "rollback_target",
        "seen",
        "start_cron_run",
        "submit_config",
        "submit_deploy",
        "submit_rollback",
    ),
    "removal": ("destroy_app",),
    "retention": ("keep_releases", "retained"),
    "rollout": (
        "config_release",
        "deploy_release",
        "rollback_release",
        "settle",
        "settle_abandoned",
    ),
    "runner": (
        "check_newest",
        "claim",
        "fail",
        "hand_over",
        "newer_queued",
        "record_image",
        "recover",
        "stage",
        "stopped",
        "succeed",
        "supersede",
    ),
    "runtime": ("start_run",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'homeport.lifecycle' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"homeport.lifecycle.{module}"), name)
    globals()[name] = value
    return value
