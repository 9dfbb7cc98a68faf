"""The `homeport` command: run the server, and talk to its API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from homeport.config import Settings
from homeport.datadir import make_private
from homeport.errors import Conflict, HomeportError, InvalidInput, NotFound, TooLarge, Unavailable
from homeport.terminal import printable_bytes


def _say(line: str) -> None:
    print(line, flush=True)


class UsageError(HomeportError):
    """The command line itself is wrong (exit code 2, like argparse's own errors)."""


# The API's status codes back into the error kinds, so the CLI speaks like the API.
_BY_STATUS: dict[int, type[HomeportError]] = {
    400: InvalidInput,
    401: InvalidInput,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    429: InvalidInput,
    503: Unavailable,
}


class ApiClient:
    """A small client of the HTTP API (stdlib only, so the CLI starts fast)."""

    def __init__(self, settings: Settings) -> None:
        self.base = settings.public_url
        self.token = settings.resolve_token() if not settings.token else settings.token

    def _open(self, req: urllib.request.Request, timeout: float | None) -> Any:
        req.add_header("Authorization", f"Bearer {self.token}")
        try:
            # HOMEPORT_URL is the user's own server, http(s) by construction.
            return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace").strip()
            try:
                detail = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                pass
            if exc.code == 401:
                detail += "; check HOMEPORT_TOKEN or the token file in the data dir"
            kind = _BY_STATUS.get(exc.code, HomeportError)
            raise kind(detail or f"homeport answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unavailable(
                f"cannot reach homeport at {self.base} ({reason}); start it with `homeport up`"
                " or set HOMEPORT_URL"
            ) from None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with self._open(req, 60) as resp:
            raw = resp.read()
            ctype = resp.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            return json.loads(raw)
        return raw.decode("utf-8", "replace")

    def stream(self, path: str, timeout: float | None = 3600) -> None:
        """Copy a text stream to stdout as it arrives, ending on a newline."""
        req = urllib.request.Request(self.base + path)  # noqa: S310
        last = b"\n"
        terminal = sys.stdout.isatty()
        with self._open(req, timeout) as resp:
            while True:
                try:
                    line = resp.readline()
                except OSError as exc:
                    raise Unavailable(
                        f"lost the connection to homeport at {self.base}: {exc}"
                    ) from None
                if not line:
                    break
                # A terminal gets no control characters from builds and pods; a file or a
                # pipe gets the bytes as sent.
                if terminal:
                    line = printable_bytes(line)
                # A closed stdout (`homeport logs blog | head`) raises BrokenPipeError here,
                # which main() ends quietly.
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
                last = line[-1:]
        if last != b"\n":
            sys.stdout.write("\n")


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[str(r.get(c, "") if r.get(c) is not None else "") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _show(as_json: bool, data: Any, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    """The API's JSON, or a table of the rows."""
    _say(json.dumps(data, indent=2) if as_json else _table(rows, columns))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homeport", description="git push deployments to a single-node k3s homelab"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run the receiver, workers and (by default) a private Redis")
    sub.add_parser("serve", help="run only the receiver (HOMEPORT_REDIS_URL required)")
    worker = sub.add_parser("worker", help="run one worker process")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    apps = sub.add_parser("apps", help="list apps; `apps destroy APP` removes one")
    apps.add_argument("--json", action="store_true")
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
    jobs = sub.add_parser(
        "jobs", help="list an app's deploy jobs, or show one job's output (JOB, or -f: newest)"
    )
    jobs.add_argument("app")
    jobs.add_argument("job", nargs="?", help="show this job's output")
    jobs.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")
    jobs.add_argument("--json", action="store_true")
    logs = sub.add_parser(
        "logs", help="the app's output: every pod's lines, prefixed with process and pod"
    )
    logs.add_argument("app")
    logs.add_argument("-f", "--follow", action="store_true", help="stream new lines and pods")
    logs.add_argument("--process", metavar="NAME", help="only this process (e.g. web)")
    logs.add_argument("--since", metavar="DURATION", help="only lines newer than e.g. 10m, 2h")
    logs.add_argument("--tail", metavar="N", help="only the last N lines (default 100)")
    run = sub.add_parser(
        "run", help="run a one-off command from the live release: homeport run APP -- CMD ARGS"
    )
    run.add_argument("app")
    run.add_argument("--process", metavar="NAME", help="the process whose settings it gets")
    run.add_argument("--detach", action="store_true", help="print the run id and return")
    run.add_argument("cmd", nargs="*", metavar="-- CMD ARGS")
    ps = sub.add_parser("ps", help="the app's processes and pods: status, restarts, release, age")
    ps.add_argument("app")
    ps.add_argument("--json", action="store_true")
    releases = sub.add_parser("releases", help="list an app's releases, newest first")
    releases.add_argument("app")
    releases.add_argument("--json", action="store_true")
    rollback = sub.add_parser("rollback", help="deploy an earlier release again (no rebuild)")
    rollback.add_argument("app")
    rollback.add_argument("--to", type=int, metavar="N", help="release number (default: previous)")
    rollback.add_argument("--json", action="store_true")
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
    cron = sub.add_parser(
        "cron", help="an app's cron schedules and last runs; `run NAME` starts one now"
    )
    cron.add_argument("app")
    cron.add_argument("action", nargs="?", choices=["run"])
    cron.add_argument("name", nargs="?", help="the cron entry to run ([cron.NAME])")
    cron.add_argument("--json", action="store_true")
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
    hooks_list = hooks_sub.add_parser("list", help="an app's hooks (their URLs are not kept)")
    hooks_list.add_argument("app")
    hooks_list.add_argument("--json", action="store_true")
    hooks_rm = hooks_sub.add_parser("rm", help="delete a hook; its URL stops working")
    hooks_rm.add_argument("id")
    doctor = sub.add_parser("doctor", help="check everything a deploy needs")
    doctor.add_argument("--json", action="store_true")
    _credentials_parser(sub)
    return parser


def _credentials_parser(sub: Any) -> None:
    creds = sub.add_parser(
        "credentials",
        help="HTTPS tokens and SSH deploy keys for webhook deploys of private repositories",
    )
    action = creds.add_subparsers(dest="action", required=True)
    put = action.add_parser(
        "set",
        help="store a user name and token for clone URLs starting with URL_PREFIX",
        description="The password (a token with read access) is read from stdin, never "
        "from the command line. The longest matching prefix is used for a fetch.",
    )
    put.add_argument("prefix", metavar="URL_PREFIX", help="e.g. https://github.com/me/")
    put.add_argument("--username", required=True, metavar="U")
    put.add_argument(
        "--password-stdin", action="store_true", required=True, help="read the password from stdin"
    )
    listing = action.add_parser("list", help="stored prefixes, user names, deploy keys and hosts")
    listing.add_argument("--json", action="store_true")
    remove = action.add_parser("rm", help="forget the credentials of URL_PREFIX")
    remove.add_argument("prefix", metavar="URL_PREFIX")
    key = action.add_parser(
        "ssh-key",
        help="make (or show) APP's ed25519 deploy key and print its public key",
        description="Add the printed public key to the repository as a read-only deploy key; "
        "webhooks for APP are then fetched over SSH from the payload's ssh_url.",
    )
    key.add_argument("app", metavar="APP")
    key.add_argument("--new", action="store_true", help="replace the key with a new one")
    key.add_argument("--remove", action="store_true", help="delete the key (fetch over HTTPS)")
    host = action.add_parser(
        "trust-host",
        help="read HOST's SSH host keys and pin them (HOST or HOST:PORT)",
        description="Prints the fingerprints pinned: compare them with the ones your git "
        "provider publishes.",
    )
    host.add_argument("host", metavar="HOST")
    host.add_argument("--fingerprint", metavar="SHA256:...", help="pin only if the host offers it")
    host.add_argument("--replace", action="store_true", help="replace a pinned key that changed")


def _credentials(args: argparse.Namespace, client: ApiClient) -> int:
    if args.action == "set":
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("credentials set reads the password from stdin; none was given")
        data = client.request(
            "PUT",
            "/api/credentials",
            {"prefix": args.prefix, "username": args.username, "password": password},
        )
        _say(f"stored credentials for {data['prefix']} (user {data['username']})")
    elif args.action == "rm":
        data = client.request("DELETE", "/api/credentials", {"prefix": args.prefix})
        _say(f"removed the credentials for {data['removed']}")
    elif args.action == "list":
        data = client.request("GET", "/api/credentials")
        if args.json:
            _say(json.dumps(data, indent=2))
            return 0
        _say(_table(data["credentials"], ["prefix", "username"]))
        keys = ", ".join(data["ssh_keys"]) or "none"
        _say(f"\ndeploy keys (homeport credentials ssh-key APP): {keys}")
        if data["ssh_hosts"]:
            _say("\n" + _table(data["ssh_hosts"], ["host", "type", "fingerprint"]))
    elif args.action == "ssh-key":
        path = f"/api/credentials/ssh-keys/{args.app}"
        if args.remove:
            client.request("DELETE", path)
            _say(f"removed the deploy key of {args.app}; its webhooks fetch over HTTPS")
            return 0
        data = client.request("POST", path, {"replace": args.new})
        _say(data["public_key"])
        if data["created"]:
            print(
                f"add this public key to the repository of {args.app} as a read-only deploy "
                "key; pin its host with homeport credentials trust-host HOST",
                file=sys.stderr,
            )
    elif args.action == "trust-host":
        wanted: dict[str, Any] = {"host": args.host, "replace": args.replace}
        if args.fingerprint:
            wanted["fingerprint"] = args.fingerprint
        data = client.request("POST", "/api/credentials/ssh-hosts", wanted)
        for key in data["keys"]:
            _say(f"pinned {key['host']} {key['type']} {key['fingerprint']}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "up":
        from homeport.server import up

        make_private(settings.data_dir)
        up(settings, settings.resolve_token(), _say)
        return 0
    if args.command == "serve":
        from homeport.server import check_listen, serve

        check_listen(settings)
        if not settings.redis_url:
            raise UsageError("homeport serve needs HOMEPORT_REDIS_URL; or use homeport up")
        make_private(settings.data_dir)
        serve(settings, settings.resolve_token())
        return 0
    if args.command == "worker":
        from homeport.worker import run

        # `homeport up` or `serve` fixed what was there; what this worker creates is private.
        make_private(settings.data_dir, fix_existing=False)
        run(settings, burst=args.burst, exit_with_parent=args.exit_with_parent)
        return 0
    if args.command == "doctor":
        from homeport import doctor

        return doctor.main(settings, as_json=args.json, say=_say)
    client = ApiClient(settings)
    if args.command == "apps" and args.apps_command == "destroy":
        return _destroy(client, args)
    if args.command == "hooks":
        return _hooks(args, client)
    if args.command == "apps":
        data = client.request("GET", "/api/apps")
        rows = [
            {
                "app": a["name"],
                "last job": (a["last_job"] or {}).get("status", "-"),
                "commit": ((a["last_job"] or {}).get("commit") or "")[:12],
            }
            for a in data["apps"]
        ]
        _show(args.json, data, rows, ["app", "last job", "commit"])
        return 0
    if args.command == "jobs" and args.job is None and not args.follow:
        data = client.request("GET", f"/api/apps/{args.app}/jobs")
        rows = [{**j, "commit": j["commit"][:12], "reason": j["reason"][:60]} for j in data["jobs"]]
        _show(args.json, data, rows, ["id", "status", "commit", "source", "reason"])
        return 0
    if args.command == "jobs":
        job = args.job
        if job is None:
            listed = client.request("GET", f"/api/apps/{args.app}/jobs")["jobs"]
            if not listed:
                raise NotFound(f"app {args.app!r} has no jobs yet; push to it first")
            job = listed[0]["id"]
        client.stream(f"/api/apps/{args.app}/jobs/{job}/log" + ("?follow=1" if args.follow else ""))
        return 0
    if args.command in ("logs", "run", "ps"):
        from homeport.runtime_cli import runtime

        return runtime(client, args, _say)
    if args.command == "releases":
        data = client.request("GET", f"/api/apps/{args.app}/releases")
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
        _show(
            args.json,
            data,
            rows,
            ["version", "status", "commit", "cause", "image", "rollback of", "reason"],
        )
        return 0
    if args.command == "rollback":
        body = {} if args.to is None else {"version": args.to}
        data = client.request("POST", f"/api/apps/{args.app}/rollback", body)
        if args.json:
            _say(json.dumps(data, indent=2))
            return 0
        _say(f"-----> Rolling back {args.app} to v{data['target']} (job {data['job']})")
        client.stream(f"/api/apps/{args.app}/jobs/{data['job']}/log?follow=1")
        job = client.request("GET", f"/api/apps/{args.app}/jobs/{data['job']}")
        return 0 if job["status"] == "succeeded" else 1
    if args.command == "config":
        path = f"/api/apps/{args.app}/config"
        if args.action == "show":
            data = client.request("GET", path)
        elif args.action == "set":
            pairs = dict(p.split("=", 1) for p in args.pairs if "=" in p)
            if not pairs or len(pairs) != len(args.pairs):
                raise UsageError("config set takes KEY=VALUE pairs, e.g. API_KEY=s3cret")
            data = client.request("POST", path, {"set": pairs, "deploy": not args.no_deploy})
        else:
            if not args.pairs:
                raise UsageError("config unset takes one or more KEY names")
            data = client.request("POST", path, {"unset": args.pairs, "deploy": not args.no_deploy})
        rows = [{"key": k, "value": v} for k, v in sorted(data["config"].items())]
        _show(args.json, data, rows, ["key", "value"])
        if args.json:
            return 0
        if data.get("note"):
            _say(data["note"])
        if not data.get("job"):
            return 0
        # A config release: follow it like a push.
        _say(f"-----> Releasing the new config of {args.app} (job {data['job']})")
        client.stream(f"/api/apps/{args.app}/jobs/{data['job']}/log?follow=1")
        job = client.request("GET", f"/api/apps/{args.app}/jobs/{data['job']}")
        return 0 if job["status"] == "succeeded" else 1
    if args.command == "source":
        path = f"/api/apps/{args.app}/source"
        if args.set is not None:
            data = client.request("PUT", path, {"repository": args.set})
        elif args.clear:
            data = client.request("DELETE", path)
        else:
            data = client.request("GET", path)
        if args.json:
            _say(json.dumps(data, indent=2))
        elif data["repository"]:
            _say(f"{data['app']} deploys from webhooks of {data['repository']}")
        else:
            _say(f"{data['app']} is not bound; the next webhook that deploys it binds it")
        return 0
    if args.command == "cron":
        return _cron(client, args)
    if args.command == "credentials":
        return _credentials(args, client)
    raise HomeportError(f"unknown command {args.command}")


def _cron(client: ApiClient, args: argparse.Namespace) -> int:
    if args.action == "run":
        if not args.name:
            raise UsageError(f"name the cron entry to run: homeport cron {args.app} run NAME")
        data = client.request("POST", f"/api/apps/{args.app}/cron/{args.name}/runs", {})
        if args.json:
            _say(json.dumps(data, indent=2))
        else:
            _say(f"-----> Started {args.name} of {args.app}: job {data['job']}")
        return 0
    if args.name:
        raise UsageError(f"did you mean: homeport cron {args.app} run {args.name}")
    data = client.request("GET", f"/api/apps/{args.app}/cron")
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
    _show(args.json, data, rows, ["name", "schedule", "last run", "outcome", "next run", "job"])
    return 0


def _destroy(client: ApiClient, args: argparse.Namespace) -> int:
    app = args.app
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"apps destroy removes {app} for good and asks to type its name; without a"
                " terminal, pass --yes"
            )
        what = "its volumes with their data, " if args.volumes else ""
        _say(f"This removes {app}: its pods, Secrets, {what}images, repository, logs and records.")
        typed = input(f"Type the app name ({app}) to confirm: ").strip()
        if typed != app:
            raise HomeportError(f"{typed!r} is not {app!r}; nothing was removed")
    body = {"confirm": app, "volumes": bool(args.volumes)}
    data = client.request("DELETE", f"/api/apps/{app}", body)
    if args.json:
        _say(json.dumps(data, indent=2))
        return 0
    _say(
        f"-----> Removed {app}: {len(data['deleted'])} Kubernetes object(s),"
        f" {data['images_deleted']} image(s), its repository, job logs and records"
    )
    for note in data.get("notes") or []:
        _say(f"       {note}")
    return 0


def _hooks(args: argparse.Namespace, client: ApiClient) -> int:
    if args.hooks_command == "create":
        body = {"rollback": True, "within": args.within}
        data = client.request("POST", f"/api/apps/{args.app}/hooks", body)
        if args.json:
            _say(json.dumps(data, indent=2))
            return 0
        _say(
            f"-----> Rollback hook {data['id']} for {args.app}: a POST rolls it back while its"
            f" live release is younger than {args.within}"
        )
        _say("       Keep the URL secret; it is shown only now:")
        _say(data["url"])
        return 0
    if args.hooks_command == "list":
        data = client.request("GET", f"/api/apps/{args.app}/hooks")
        rows = [
            {
                **h,
                "within": f"{h['within']}s",
                "last used": _when(h["last_used_at"]) if h["last_used_at"] else "never",
            }
            for h in data["hooks"]
        ]
        _show(args.json, data, rows, ["id", "kind", "within", "last used"])
        return 0
    data = client.request("DELETE", f"/api/hooks/{args.id}")
    _say(f"removed hook {data['removed']['id']} of {data['removed']['app']}")
    return 0


def _when(timestamp: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 done, 1 failed, 2 usage (argparse's own, and UsageError); `run` exits
    with its command's code."""
    words = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if words[:1] == ["run"] and "--" in words:
        # Everything after `--` is the command, options included (argparse would read them).
        cut = words.index("--")
        words, command = words[:cut], words[cut + 1 :]
    args = _parser().parse_args(words)
    if args.command == "run":
        args.cmd = [*args.cmd, *command]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # dulwich logs every request at INFO; homeport's own lines are the useful ones.
    logging.getLogger("dulwich").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
        return _run(args, settings)
    except BrokenPipeError:
        # The reader went away (`homeport logs blog | head`): nothing more to say. Point
        # stdout at /dev/null so the interpreter's final flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except UsageError as exc:
        print(f"homeport: {str(exc).strip()}", file=sys.stderr)
        return 2
    except HomeportError as exc:
        print(f"homeport: {str(exc).strip()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
