"""`homeport apps` (list, destroy) and `homeport source` (the repository bound to an app)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from homeport.cli.client import Context, UsageError, old_spelling, say, show, show_json
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
        "source",
        usage="homeport source [--json] APP\n"
        "       homeport source set [--json] APP REPOSITORY\n"
        "       homeport source rm [--json] APP",
        help="the repository whose webhooks may deploy an app (PROVIDER:OWNER/NAME)",
        description="`source APP` shows the binding, `source set APP github:me/blog` binds "
        "APP to that repository, `source rm APP` unbinds it (the next webhook that deploys "
        "APP binds it again).",
    )
    # Words, not sub-commands: `source APP` shows the binding, and an app may be named `rm`.
    source.add_argument("words", nargs="+", metavar="[set|rm] APP [REPOSITORY]")
    change = source.add_mutually_exclusive_group()
    # The old spellings of `source set APP REPOSITORY` and `source rm APP`.
    change.add_argument("--set", metavar="REPOSITORY", help=argparse.SUPPRESS)
    change.add_argument("--clear", action="store_true", help=argparse.SUPPRESS)
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
    if not rows and not args.json:
        say(
            "no apps yet; push to create one: git remote add homelab"
            f" {ctx.client.base}/git/<app>.git && git push homelab main"
        )
        return 0
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
    words = args.words
    repository: str | None = None
    if len(words) == 1:
        verb, app = "show", words[0]
    elif len(words) == 3 and words[0] == "set":
        verb, app, repository = "set", words[1], words[2]
    elif len(words) == 2 and words[0] == "rm":
        verb, app = "rm", words[1]
    else:
        raise UsageError(
            "source takes APP, set APP REPOSITORY or rm APP,"
            " e.g. homeport source set blog github:me/blog"
        )
    if args.set is not None or args.clear:
        if verb != "show":
            raise UsageError(f"give the change once, e.g. homeport source {verb} {app}")
        if args.set is not None:
            verb, repository = "set", args.set
            old_spelling("--set", ["homeport", "source", "set", app, args.set])
        else:
            verb = "rm"
            old_spelling("--clear", ["homeport", "source", "rm", app])
    path = f"/api/apps/{app}/source"
    if verb == "set":
        data = ctx.client.request("PUT", path, {"repository": repository})
    elif verb == "rm":
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
