"""`homeport hooks`: secret URLs a monitor calls to roll an app back."""

from __future__ import annotations

import argparse
import time
from typing import Any

from homeport.cli.client import Context, say, show, show_json


def register(sub: Any) -> None:
    hooks = sub.add_parser("hooks", help="URLs a monitor calls to roll an app back")
    hooks_sub = hooks.add_subparsers(dest="hooks_command", required=True)
    hooks_create = hooks_sub.add_parser("create", help="make a hook; prints its URL last")
    hooks_create.add_argument("app")
    hooks_create.add_argument(
        "--rollback", action="store_true", required=True, help="roll the app back when called"
    )
    hooks_create.add_argument(
        "--within",
        default="1h",
        help="act only while the live release is younger than this (default 1h; e.g. 30m, 2d)",
    )
    hooks_create.add_argument("--json", action="store_true")
    hooks_create.set_defaults(func=_create)
    hooks_list = hooks_sub.add_parser("list", help="an app's hooks (their URLs are not kept)")
    hooks_list.add_argument("app")
    hooks_list.add_argument("--json", action="store_true")
    hooks_list.set_defaults(func=_list)
    hooks_rm = hooks_sub.add_parser("rm", help="delete a hook; its URL stops working")
    hooks_rm.add_argument("id")
    hooks_rm.add_argument("--json", action="store_true")
    hooks_rm.set_defaults(func=_remove)


def _create(args: argparse.Namespace, ctx: Context) -> int:
    client = ctx.client
    body = {"rollback": True, "within": args.within}
    data = client.request("POST", f"/api/apps/{args.app}/hooks", body)
    if args.json:
        show_json(data)
        return 0
    say(
        f"-----> Rollback hook {data['id']} for {args.app}: a POST rolls it back while its"
        f" live release is younger than {args.within}"
    )
    say("       Keep the URL secret; it is shown only now:")
    say(data["url"])
    return 0


def _list(args: argparse.Namespace, ctx: Context) -> int:
    client = ctx.client
    data = client.request("GET", f"/api/apps/{args.app}/hooks")
    rows = [
        {
            **h,
            "within": f"{h['within']}s",
            "last used": _when(h["last_used_at"]) if h["last_used_at"] else "never",
        }
        for h in data["hooks"]
    ]
    show(args.json, data, rows, ["id", "kind", "within", "last used"])
    return 0


def _remove(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.client.request("DELETE", f"/api/hooks/{args.id}")
    if args.json:
        show_json(data)
        return 0
    say(f"removed hook {data['removed']['id']} of {data['removed']['app']}")
    return 0


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
