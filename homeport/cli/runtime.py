"""The running app: `homeport logs`, `run`, `ps` and `cron`."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any
from urllib.parse import urlencode

from homeport.cli.client import Context, UsageError, old_spelling, say, show, show_json
from homeport.errors import HomeportError

# `run`'s own options: whether each takes a value, and its help. dash_dash_hint reads them
# as argparse does, so its hint keeps them homeport's.
RUN_OPTIONS = {
    "--process": (True, "the process whose settings it gets"),
    "--detach": (False, "print the run id and return"),
    "--json": (False, "with --detach: print the started run's JSON"),
}


# `logs --tail` without a number: follow, as `heroku logs --tail` does.
_FOLLOW = -1


def line_count(text: str) -> int:
    """argparse's type of a number of log lines."""
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines, e.g. 20")
    return int(text)


# How long an interrupted `run` waits for the server to stop its command.
STOP_SECONDS = 20


def register(sub: Any) -> None:
    logs = sub.add_parser(
        "logs", help="the app's output: every pod's lines, prefixed with process and pod"
    )
    logs.add_argument("app")
    logs.add_argument("-f", "--follow", action="store_true", help="stream new lines and pods")
    logs.add_argument("--process", metavar="NAME", help="only this process (e.g. web)")
    logs.add_argument("--since", metavar="DURATION", help="only lines newer than e.g. 10m, 2h")
    logs.add_argument(
        "-n", "--num", type=line_count, metavar="N", help="only the last N lines (default 100)"
    )
    # kubectl's spelling of -n, and, alone, Heroku's of -f.
    logs.add_argument(
        "--tail",
        nargs="?",
        const=_FOLLOW,
        type=line_count,
        metavar="N",
        help="--tail N is -n N; --tail alone is -f",
    )
    # Refused with a reason rather than unknown: logs are text (see _logs).
    logs.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    logs.set_defaults(func=_logs)
    run = sub.add_parser(
        "run",
        help="run a one-off command from the live release: homeport run APP CMD ARGS",
        description="Every option before -- is homeport's, after the command too; when the "
        "command has options of its own, put -- before it: homeport run blog -- ls -la",
    )
    run.add_argument("app")
    for option, (takes_value, what) in RUN_OPTIONS.items():
        if takes_value:
            run.add_argument(option, metavar="NAME", help=what)
        else:
            run.add_argument(option, action="store_true", help=what)
    run.add_argument("cmd", nargs="*", metavar="[--] CMD ARGS")
    run.set_defaults(func=_run)
    ps = sub.add_parser("ps", help="the app's processes and pods: status, restarts, release, age")
    ps.add_argument("app")
    ps.add_argument("--json", action="store_true")
    ps.set_defaults(func=_ps)
    cron = sub.add_parser(
        "cron",
        usage="homeport cron [--json] APP\n       homeport cron run [--json] APP NAME",
        help="an app's cron schedules and last runs; `cron run APP NAME` starts one now",
        description="`cron APP` lists the schedules with their last and next runs; "
        "`cron run APP NAME` starts a run of [cron.NAME] now (and does not follow it).",
    )
    # Words, not a sub-command: `cron APP` lists, and the old order `cron APP run NAME` works.
    cron.add_argument("words", nargs="+", metavar="[run] APP [NAME]")
    cron.add_argument("--json", action="store_true")
    cron.set_defaults(func=_cron)


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ps(args: argparse.Namespace, ctx: Context) -> int:
    client = ctx.client
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
    show(args.json, data, rows, columns)
    return 0


def _own_option(word: str) -> str | None:
    """The `run` option `word` names, as argparse reads it (a unique prefix will do)."""
    name = word.partition("=")[0]
    if not name.startswith("--") or name == "--":
        return None
    found = [option for option in RUN_OPTIONS if option.startswith(name)]
    return found[0] if len(found) == 1 else None


def dash_dash_hint(words: list[str]) -> str:
    """What to type instead of `run` WORDS whose command has options argparse did not know."""
    own: list[str] = []
    rest: list[str] = []
    given = iter(words)
    for word in given:
        option = _own_option(word)
        if option is None:
            rest.append(word)
            continue
        own.append(word)
        if RUN_OPTIONS[option][0] and "=" not in word:
            own.append(next(given, ""))
    app = next((word for word in rest if not word.startswith("-")), "APP")
    if app in rest:
        rest.remove(app)
    fixed = shlex.join(["homeport", "run", app, *own, "--", *rest])
    return f"use -- before the command's options: {fixed}"


def _run(args: argparse.Namespace, ctx: Context) -> int:
    command = list(args.cmd)
    if not command:
        raise UsageError(f"name the command to run, e.g. homeport run {args.app} -- ls -la")
    if args.json and not args.detach:
        raise UsageError(
            "run --json needs --detach: an attached run prints its command's output as it"
            " comes, not JSON"
        )
    client = ctx.client
    body: dict[str, Any] = {"command": command}
    if args.process:
        body["process"] = args.process
    started = client.request("POST", f"/api/apps/{args.app}/runs", body)
    run = started["id"]
    if args.detach:
        if args.json:
            show_json(started)
        else:
            say(run)
        return 0
    path = f"/api/apps/{args.app}/runs/{run}"
    try:
        client.stream(path + "/log?follow=1", timeout=None)
    except KeyboardInterrupt:
        # As with an attached terminal: interrupting the CLI stops the command. A server slow
        # to answer, or a second Ctrl-C, does not keep the user waiting: they are told.
        try:
            client.request("DELETE", path, timeout=STOP_SECONDS)
        except (HomeportError, KeyboardInterrupt) as exc:
            said = f" ({exc})" if str(exc) else ""
            print(
                f"homeport: run {run} may still be running{said}; stop it with DELETE {path}",
                file=sys.stderr,
            )
            return 130
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


def _logs(args: argparse.Namespace, ctx: Context) -> int:
    if args.json:
        raise UsageError(
            "logs are text, one line per line of output (TIME PROCESS[POD]: LINE), with no"
            " JSON form; drop --json"
        )
    follow = args.follow or args.tail == _FOLLOW
    lines = args.num
    if args.tail not in (None, _FOLLOW):
        if lines is not None and lines != args.tail:
            raise UsageError(f"give the number of lines once, e.g. homeport logs {args.app} -n 20")
        lines = args.tail
    query = {"follow": "1" if follow else None}
    query.update(process=args.process, since=args.since, tail=None if lines is None else str(lines))
    given = {k: v for k, v in query.items() if v is not None}
    path = f"/api/apps/{args.app}/logs" + (f"?{urlencode(given)}" if given else "")
    # Following has no end of its own: wait for lines as long as the user does.
    ctx.client.stream(path, timeout=None if follow else 300)
    return 0


def _cron(args: argparse.Namespace, ctx: Context) -> int:
    words = args.words
    if len(words) == 1:
        return _cron_list(args, ctx, words[0])
    if len(words) == 3 and words[0] == "run":
        return _cron_run(args, ctx, words[1], words[2])
    if len(words) == 3 and words[1] == "run":
        old_spelling("cron APP run NAME", ["homeport", "cron", "run", words[0], words[2]])
        return _cron_run(args, ctx, words[0], words[2])
    if len(words) == 2 and "run" in words:
        app = words[1] if words[0] == "run" else words[0]
        raise UsageError(f"name the cron entry to run: homeport cron run {app} NAME")
    if len(words) == 2:
        raise UsageError(f"did you mean: homeport cron run {words[0]} {words[1]}")
    raise UsageError("cron takes APP, or run APP NAME, e.g. homeport cron run blog backup")


def _cron_run(args: argparse.Namespace, ctx: Context, app: str, name: str) -> int:
    data = ctx.client.request("POST", f"/api/apps/{app}/cron/{name}/runs", {})
    if args.json:
        show_json(data)
    else:
        say(f"-----> Started {name} of {app}: job {data['job']}")
    return 0


def _cron_list(args: argparse.Namespace, ctx: Context, app: str) -> int:
    data = ctx.client.request("GET", f"/api/apps/{app}/cron")
    rows = []
    for entry in data["cron"]:
        last = entry["last_run"] or {}
        rows.append(
            {
                "name": entry["name"],
                "schedule": entry["schedule"],
                "last run": last.get("started_at") or "never",
                "outcome": last.get("status") or "",
                "next run": entry["next_run"] or "",
                "job": last.get("job") or "",
            }
        )
    show(args.json, data, rows, ["name", "schedule", "last run", "outcome", "next run", "job"])
    return 0
