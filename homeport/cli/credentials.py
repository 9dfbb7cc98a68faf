"""`homeport credentials`: HTTPS tokens and SSH deploy keys for private repositories."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from homeport.cli.client import Context, UsageError, old_spelling, say, show_json, table


def register(sub: Any) -> None:
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
    remove = action.add_parser("rm", help="forget the credentials of URL_PREFIX")
    remove.add_argument("prefix", metavar="URL_PREFIX")
    key = action.add_parser(
        "ssh-key",
        usage="homeport credentials ssh-key [--replace] [--json] APP\n"
        "       homeport credentials ssh-key rm [--json] APP",
        help="make (or show) APP's ed25519 deploy key and print its public key; rm deletes it",
        description="Add the printed public key to the repository as a read-only deploy key; "
        "webhooks for APP are then fetched over SSH from the payload's ssh_url. "
        "`ssh-key rm APP` deletes the key: APP's webhooks fetch over HTTPS again.",
    )
    # Words, not a sub-command: `ssh-key APP` shows the key, and an app may be named `rm`.
    key.add_argument("words", nargs="+", metavar="[rm] APP")
    key.add_argument("--replace", action="store_true", help="replace the key with a new one")
    # The old spellings of --replace and of `ssh-key rm APP`.
    key.add_argument("--new", action="store_true", help=argparse.SUPPRESS)
    key.add_argument("--remove", action="store_true", help=argparse.SUPPRESS)
    host = action.add_parser(
        "trust-host",
        help="read HOST's SSH host keys and pin them (HOST or HOST:PORT)",
        description="Prints the fingerprints pinned: compare them with the ones your git "
        "provider publishes.",
    )
    host.add_argument("host", metavar="HOST")
    host.add_argument("--fingerprint", metavar="SHA256:...", help="pin only if the host offers it")
    host.add_argument("--replace", action="store_true", help="replace a pinned key that changed")
    for each, handler in (
        (put, _set),
        (listing, _list),
        (remove, _remove),
        (key, _ssh_key),
        (host, _trust_host),
    ):
        each.add_argument("--json", action="store_true", help="print the API's JSON answer")
        each.set_defaults(func=handler)


def _set(args: argparse.Namespace, ctx: Context) -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("credentials set reads the password from stdin; none was given")
    body = {"prefix": args.prefix, "username": args.username, "password": password}
    data = ctx.client.request("PUT", "/api/credentials", body)
    if args.json:
        show_json(data)
    else:
        say(f"stored credentials for {data['prefix']} (user {data['username']})")
    return 0


def _remove(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.client.request("DELETE", "/api/credentials", {"prefix": args.prefix})
    if args.json:
        show_json(data)
    else:
        say(f"removed the credentials for {data['removed']}")
    return 0


def _list(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.client.request("GET", "/api/credentials")
    if args.json:
        show_json(data)
        return 0
    say(table(data["credentials"], ["prefix", "username"]))
    keys = ", ".join(data["ssh_keys"]) or "none"
    say(f"\ndeploy keys (homeport credentials ssh-key APP): {keys}")
    if data["ssh_hosts"]:
        say("\n" + table(data["ssh_hosts"], ["host", "type", "fingerprint"]))
    return 0


def _ssh_key(args: argparse.Namespace, ctx: Context) -> int:
    words = args.words
    if len(words) == 1:
        app, remove = words[0], False
    elif len(words) == 2 and words[0] == "rm":
        app, remove = words[1], True
    else:
        raise UsageError(
            "ssh-key takes APP, or rm APP to delete its key: homeport credentials ssh-key rm blog"
        )
    remove = remove or args.remove
    replace = args.replace or args.new
    if remove and replace:
        raise UsageError("rm deletes the key and --replace makes a new one; give one of them")
    if args.remove:
        old_spelling("ssh-key APP --remove", ["homeport", "credentials", "ssh-key", "rm", app])
    if args.new:
        old_spelling("--new", ["homeport", "credentials", "ssh-key", app, "--replace"])
    client = ctx.client
    path = f"/api/credentials/ssh-keys/{app}"
    if remove:
        data = client.request("DELETE", path)
        if args.json:
            show_json(data)
        else:
            say(f"removed the deploy key of {app}; its webhooks fetch over HTTPS")
        return 0
    data = client.request("POST", path, {"replace": replace})
    if args.json:
        show_json(data)
        return 0
    say(data["public_key"])
    if data["created"]:
        print(
            f"add this public key to the repository of {app} as a read-only deploy "
            "key; pin its host with homeport credentials trust-host HOST",
            file=sys.stderr,
        )
    return 0


def _trust_host(args: argparse.Namespace, ctx: Context) -> int:
    wanted: dict[str, Any] = {"host": args.host, "replace": args.replace}
    if args.fingerprint:
        wanted["fingerprint"] = args.fingerprint
    data = ctx.client.request("POST", "/api/credentials/ssh-hosts", wanted)
    if args.json:
        show_json(data)
        return 0
    for key in data["keys"]:
        say(f"pinned {key['host']} {key['type']} {key['fingerprint']}")
    return 0
