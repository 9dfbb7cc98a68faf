"""Deploys and releases: `homeport jobs`, `releases`, `rollback` and `config`."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from homeport.cli.client import Context, UsageError, job_exit_code, say, show, show_json
from homeport.errors import NotFound

# A release as `homeport releases` prints it (v3), or its bare number (3).
_RELEASE = re.compile(r"[vV]?([0-9]{1,9})")


def release_number(text: str) -> int:
    """argparse's type of a release: `v3` or `3`."""
    match = _RELEASE.fullmatch(text.strip())
    if match is None or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a release; give it as `homeport releases` shows it, e.g. v3 (or 3)"
        )
    return int(match.group(1))


def register(sub: Any) -> None:
    jobs = sub.add_parser(
        "jobs", help="list an app's deploy jobs, or show one job's output (JOB, or -f: newest)"
    )
    jobs.add_argument("app")
    jobs.add_argument("job", nargs="?", help="show this job's output")
    jobs.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")
    jobs.add_argument(
        "--json", action="store_true", help="the list, or the job (with -f: once it ended)"
    )
    jobs.set_defaults(func=_jobs)
    releases = sub.add_parser("releases", help="list an app's releases, newest first")
    releases.add_argument("app")
    releases.add_argument("--json", action="store_true")
    releases.set_defaults(func=_releases)
    rollback = sub.add_parser("rollback", help="deploy an earlier release again (no rebuild)")
    rollback.add_argument("app")
    rollback.add_argument(
        "release",
        nargs="?",
        type=release_number,
        metavar="RELEASE",
        help="the release to go back to, e.g. v3 (default: the previous live one)",
    )
    rollback.add_argument(
        "--to", type=release_number, metavar="RELEASE", help="the same as RELEASE"
    )
    rollback.add_argument("--json", action="store_true")
    rollback.set_defaults(func=_rollback)
    config = sub.add_parser(
        "config", help="app secrets as env; set and unset release them on the live image"
    )
    config.add_argument("action", choices=["show", "set", "unset"])
    config.add_argument("app")
    config.add_argument("pairs", nargs="*", metavar="KEY[=VALUE]")
    config.add_argument(
        "--no-deploy", action="store_true", help="only store the change for the next release"
    )
    config.add_argument("--json", action="store_true")
    config.set_defaults(func=_config)


def _jobs(args: argparse.Namespace, ctx: Context) -> int:
    client = ctx.client
    if args.job is None and not args.follow:
        data = client.request("GET", f"/api/apps/{args.app}/jobs")
        rows = [{**j, "commit": j["commit"][:12], "reason": j["reason"][:60]} for j in data["jobs"]]
        show(args.json, data, rows, ["id", "status", "commit", "source", "reason"])
        return 0
    job = args.job
    if job is None:
        listed = client.request("GET", f"/api/apps/{args.app}/jobs")["jobs"]
        if not listed:
            raise NotFound(f"app {args.app!r} has no jobs yet; push to it first")
        job = listed[0]["id"]
    path = f"/api/apps/{args.app}/jobs/{job}"
    if args.follow:
        # Like rollback and config set: a followed job that failed is a failed command.
        ended = client.follow_job(args.app, job, echo=not args.json)
        if args.json:
            show_json(ended)
        return job_exit_code(ended)
    if args.json:
        show_json(client.request("GET", path))
    else:
        client.stream(path + "/log")
    return 0


def _releases(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.client.request("GET", f"/api/apps/{args.app}/releases")
    rows = [
        {
            **r,
            "version": f"v{r['version']}",
            "commit": r["commit"][:12],
            "image": r["image"].rpartition("@")[2][:19],
            "rollback of": f"v{r['rollback_of']}" if r["rollback_of"] else "",
            "cause": r.get("cause", "push"),
            "reason": r["reason"][:70],
        }
        for r in data["releases"]
    ]
    columns = ["version", "status", "commit", "cause", "image", "rollback of", "reason"]
    show(args.json, data, rows, columns)
    return 0


def _rollback(args: argparse.Namespace, ctx: Context) -> int:
    if args.release is not None and args.to is not None and args.release != args.to:
        raise UsageError(
            f"give the release once, e.g. homeport rollback {args.app} v{args.release}"
        )
    target = args.to if args.release is None else args.release
    body = {} if target is None else {"version": target}
    data = ctx.client.request("POST", f"/api/apps/{args.app}/rollback", body)
    if args.json:
        show_json(data)
        return 0
    say(f"-----> Rolling back {args.app} to v{data['target']} (job {data['job']})")
    return job_exit_code(ctx.client.follow_job(args.app, data["job"]))


def _pairs(words: list[str]) -> dict[str, str]:
    """KEY=VALUE words; one KEY alone takes its value from stdin, off the command line."""
    if len(words) == 1 and "=" not in words[0]:
        # A secret on the command line shows in `ps` and the shell's history; stdin does not.
        if sys.stdin.isatty():
            import getpass  # only a value typed at a terminal needs it

            value = getpass.getpass(f"value of {words[0]} (not shown): ")
        else:
            value = sys.stdin.read().removesuffix("\n")
        if not value:
            raise UsageError(f"no value for {words[0]} on stdin; nothing was changed")
        return {words[0]: value}
    pairs = dict(p.split("=", 1) for p in words if "=" in p)
    if not pairs or len(pairs) != len(words):
        raise UsageError(
            "config set takes KEY=VALUE pairs, e.g. API_KEY=s3cret, or one KEY whose value"
            " it reads from stdin (off the command line: `homeport config set blog API_KEY"
            " < key.txt`)"
        )
    return pairs


def _config(args: argparse.Namespace, ctx: Context) -> int:
    client = ctx.client
    path = f"/api/apps/{args.app}/config"
    if args.action == "show":
        data = client.request("GET", path)
    elif args.action == "set":
        pairs = _pairs(args.pairs)
        data = client.request("POST", path, {"set": pairs, "deploy": not args.no_deploy})
    else:
        if not args.pairs:
            raise UsageError("config unset takes one or more KEY names")
        data = client.request("POST", path, {"unset": args.pairs, "deploy": not args.no_deploy})
    rows = [{"key": k, "value": v} for k, v in sorted(data["config"].items())]
    show(args.json, data, rows, ["key", "value"])
    if args.json:
        return 0
    if data.get("note"):
        say(data["note"])
    if not data.get("job"):
        return 0
    # A config release: follow it like a push.
    say(f"-----> Releasing the new config of {args.app} (job {data['job']})")
    return job_exit_code(client.follow_job(args.app, data["job"]))
