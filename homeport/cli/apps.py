"""`homeport apps` (list, destroy) and `homeport source` (the repository bound to an app)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from homeport.cli.client import Context, UsageError, say, show, show_json
from homeport.errors import HomeportError


def register(sub: Any) -> None:
    apps = sub.add_parser("apps", help="list apps; `apps destroy APP` removes one")
    apps.add_argument("--json", action="store_true")
    apps.set_defaults(func=_list)
    apps_sub = apps.add_subparsers(dest="apps_command")
    destroy = apps_sub.add_parser(
        "destroy", help="remove an app: its pods, Secrets, images, repository, logs and records"
    )
    destroy.add_argument("app")
    destroy.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    destroy.add_argument(
        "--volumes", action="store_true", help="delete its volume claims and their data too"
    )
    destroy.add_argument("--json", action="store_true")
    destroy.set_defaults(func=_destroy)
    source = sub.add_parser(
        "source", help="the repository whose webhooks may deploy an app (PROVIDER:OWNER/NAME)"
    )
    source.add_argument("app")
    change = source.add_mutually_exclusive_group()
    change.add_argument("--set", metavar="REPOSITORY", help="bind to e.g. github:me/blog")
    change.add_argument(
        "--clear", action="store_true", help="unbind; the next webhook that deploys binds it"
    )
    source.add_argument("--json", action="store_true")
    source.set_defaults(func=_source)


def _list(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.client.request("GET", "/api/apps")
    rows = [
        {
            "app": a["name"],
            "last job": (a["last_job"] or {}).get("status", "-"),
            "commit": ((a["last_job"] or {}).get("commit") or "")[:12],
        }
        for a in data["apps"]
    ]
    show(args.json, data, rows, ["app", "last job", "commit"])
    return 0


def _destroy(args: argparse.Namespace, ctx: Context) -> int:
    app = args.app
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"apps destroy removes {app} for good and asks to type its name; without a"
                " terminal, pass --yes"
            )
        what = "its volumes with their data, " if args.volumes else ""
        say(f"This removes {app}: its pods, Secrets, {what}images, repository, logs and records.")
        typed = input(f"Type the app name ({app}) to confirm: ").strip()
        if typed != app:
            raise HomeportError(f"{typed!r} is not {app!r}; nothing was removed")
    body = {"confirm": app, "volumes": bool(args.volumes)}
    data = ctx.client.request("DELETE", f"/api/apps/{app}", body)
    if args.json:
        show_json(data)
        return 0
    say(
        f"-----> Removed {app}: {len(data['deleted'])} Kubernetes object(s),"
        f" {data['images_deleted']} image(s), its repository, job logs and records"
    )
    for note in data.get("notes") or []:
        say(f"       {note}")
    return 0


def _source(args: argparse.Namespace, ctx: Context) -> int:
    path = f"/api/apps/{args.app}/source"
    if args.set is not None:
        data = ctx.client.request("PUT", path, {"repository": args.set})
    elif args.clear:
        data = ctx.client.request("DELETE", path)
    else:
        data = ctx.client.request("GET", path)
    if args.json:
        show_json(data)
    elif data["repository"]:
        say(f"{data['app']} deploys from webhooks of {data['repository']}")
    else:
        say(f"{data['app']} is not bound; the next webhook that deploys it binds it")
    return 0
