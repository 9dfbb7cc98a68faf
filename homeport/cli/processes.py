"""Commands that run homeport itself: `up`, `serve`, `worker` and `doctor`.

Each imports its server side when it runs: the other commands only talk to the API, and
loading the receiver, the worker or the cluster checks would slow every one of them.
"""

from __future__ import annotations

import argparse
from typing import Any

from homeport.cli.client import Context, UsageError, say
from homeport.datadir import make_private


def register(sub: Any) -> None:
    up = sub.add_parser("up", help="run the receiver, workers and (by default) a private Redis")
    up.set_defaults(func=_up)
    serve = sub.add_parser("serve", help="run only the receiver (HOMEPORT_REDIS_URL required)")
    serve.set_defaults(func=_serve)
    worker = sub.add_parser("worker", help="run one worker process")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    worker.set_defaults(func=_worker)
    doctor = sub.add_parser("doctor", help="check everything a deploy needs")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(func=_doctor)


def _up(args: argparse.Namespace, ctx: Context) -> int:
    from homeport.processes.server import up

    settings = ctx.settings
    make_private(settings.data_dir)
    up(settings, settings.resolve_token(), say)
    return 0


def _serve(args: argparse.Namespace, ctx: Context) -> int:
    from homeport.processes.server import check_listen, serve

    settings = ctx.settings
    check_listen(settings)
    if not settings.redis_url:
        raise UsageError("homeport serve needs HOMEPORT_REDIS_URL; or use homeport up")
    make_private(settings.data_dir)
    serve(settings, settings.resolve_token())
    return 0


def _worker(args: argparse.Namespace, ctx: Context) -> int:
    from homeport.processes.worker import run

    # `homeport up` or `serve` fixed what was there; what this worker creates is private.
    make_private(ctx.settings.data_dir, fix_existing=False)
    run(ctx.settings, burst=args.burst, exit_with_parent=args.exit_with_parent)
    return 0


def _doctor(args: argparse.Namespace, ctx: Context) -> int:
    from homeport.processes import doctor

    return doctor.main(ctx.settings, as_json=args.json, say=say)
