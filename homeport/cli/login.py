"""`homeport login URL` and `homeport logout`: the server the CLI talks to, and its token."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from homeport.cli import profile
from homeport.cli.client import FINDING_IT, ApiClient, Context, UsageError, say, show_json
from homeport.errors import InvalidInput
from homeport.settings import check_url


def register(sub: Any) -> None:
    login = sub.add_parser(
        "login",
        help="check a homeport's token and keep its URL and token for the CLI",
        description="Asks for the token (or reads it from stdin with --token-stdin), checks it"
        " against the server, and stores URL and token in ~/.config/homeport/cli.json"
        " (mode 0600). HOMEPORT_URL and HOMEPORT_TOKEN, when set, win over it.",
    )
    login.add_argument("url", metavar="URL", help="e.g. http://box.lan:8080")
    login.add_argument(
        "--token-stdin", action="store_true", help="read the token from stdin (for scripts)"
    )
    login.add_argument("--json", action="store_true")
    login.set_defaults(func=_login)
    logout = sub.add_parser("logout", help="forget the URL and token `homeport login` kept")
    logout.set_defaults(func=_logout)


def _token(args: argparse.Namespace) -> str:
    if args.token_stdin:
        token = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        # Imported here: only a login on a terminal asks, and every command loads this module.
        import getpass

        token = getpass.getpass(f"token of {args.url} ({FINDING_IT}): ").strip()
    else:
        raise UsageError("no terminal to ask for the token on; pipe it in with --token-stdin")
    if not token:
        raise UsageError("no token given; nothing was stored")
    return token


def _login(args: argparse.Namespace, ctx: Context) -> int:
    try:
        url = check_url(args.url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    client = ApiClient(url, _token(args))
    # Any call that needs the token proves it; the app list is the smallest.
    data = client.request("GET", "/api/apps")
    if not isinstance(data, dict) or "apps" not in data:
        raise InvalidInput(f"{url} answered, but not as homeport does; check the URL")
    where = profile.save(profile.Profile(url, client.token))
    if args.json:
        show_json({"url": url, "apps": len(data["apps"]), "stored": str(where)})
        return 0
    say(f"logged in to {url} ({len(data['apps'])} apps); kept in {where}")
    return 0


def _logout(args: argparse.Namespace, ctx: Context) -> int:
    where = profile.path()
    say(f"forgot the login in {where}" if profile.remove() else "not logged in; nothing to do")
    return 0
