"""The runtime commands of the CLI: `homeport run`, `homeport logs` and `homeport ps`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from homeport.cli import ApiClient


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ps(client: ApiClient, args: argparse.Namespace, say: Callable[[str], None]) -> int:
    from homeport.cli import _show

    data = client.request("GET", f"/api/apps/{args.app}/ps")
    rows: list[dict[str, Any]] = []
    for process in data["processes"]:
        for pod in process["pods"] or [{"name": "-", "status": "no pods"}]:
            release = pod.get("release")
            rows.append(
                {
                    "process": process["name"],
                    "pod": pod["name"],
                    "status": pod["status"],
                    "ready": "" if "ready" not in pod else ("yes" if pod["ready"] else "no"),
                    "restarts": pod.get("restarts", ""),
                    "release": f"v{release}" if release else "",
                    "age": _age(pod.get("age")) if "age" in pod else "",
                }
            )
    if not rows and not args.json:
        say(f"{args.app} has no processes running; push to deploy it")
        return 0
    columns = ["process", "pod", "status", "ready", "restarts", "release", "age"]
    _show(args.json, data, rows, columns)
    return 0


def _run(client: ApiClient, args: argparse.Namespace, say: Callable[[str], None]) -> int:
    from homeport.cli import UsageError

    command = list(args.cmd)
    if not command:
        raise UsageError(f"run needs a command after --, e.g. homeport run {args.app} -- ls /")
    body: dict[str, Any] = {"command": command}
    if args.process:
        body["process"] = args.process
    started = client.request("POST", f"/api/apps/{args.app}/runs", body)
    run = started["id"]
    if args.detach:
        say(run)
        return 0
    path = f"/api/apps/{args.app}/runs/{run}"
    try:
        client.stream(path + "/log?follow=1", timeout=None)
    except KeyboardInterrupt:
        # As with an attached terminal: interrupting the CLI stops the command.
        client.request("DELETE", path)
        print(f"homeport: stopped run {run}", file=sys.stderr)
        return 130
    status = client.request("GET", path)
    if status["status"] in ("pending", "running"):
        print(
            f"homeport: run {run} is still {status['status']}; its status is at GET {path}",
            file=sys.stderr,
        )
        return 1
    if status["reason"]:
        print(f"homeport: run {run} failed: {status['reason']}", file=sys.stderr)
    code: int = 1 if status["exit_code"] is None else status["exit_code"]
    return code


def _logs(client: ApiClient, args: argparse.Namespace) -> int:
    query = {"follow": "1" if args.follow else None}
    query.update(process=args.process, since=args.since, tail=args.tail)
    given = {k: v for k, v in query.items() if v is not None}
    path = f"/api/apps/{args.app}/logs" + (f"?{urlencode(given)}" if given else "")
    # Following has no end of its own: wait for lines as long as the user does.
    client.stream(path, timeout=None if args.follow else 300)
    return 0


def runtime(client: ApiClient, args: argparse.Namespace, say: Callable[[str], None]) -> int:
    """Run one of the runtime commands; returns the exit code."""
    if args.command == "ps":
        return _ps(client, args, say)
    if args.command == "run":
        return _run(client, args, say)
    return _logs(client, args)
