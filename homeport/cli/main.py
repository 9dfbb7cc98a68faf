"""The `homeport` command line: one parser, each command group registering its own part."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from homeport.cli import apps, credentials, deploys, hooks, login, processes, runtime
from homeport.cli.client import Context, UsageError
from homeport.errors import HomeportError
from homeport.settings import Settings

# In `homeport --help` order.
GROUPS = (processes, login, apps, deploys, runtime, hooks, credentials)


def version() -> str:
    """The installed homeport's version, or the checkout's when it runs uninstalled."""
    # Imported here: importlib.metadata takes 30 ms, which every other command would pay.
    import importlib.metadata
    import tomllib

    try:
        return importlib.metadata.version("homeport")
    except importlib.metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        with pyproject.open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return "unknown"


class _Version(argparse.Action):
    """--version, looked up only when asked: the other commands do not pay for the lookup."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"homeport {version()}")
        parser.exit()


def parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top parser, and each command's by name."""
    top = argparse.ArgumentParser(
        prog="homeport", description="git push deployments to a single-node k3s homelab"
    )
    top.add_argument("--version", action=_Version, help="print homeport's version and exit")
    sub = top.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return top, dict(sub.choices)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 done, 1 failed, 2 usage (argparse's own, and UsageError); `run` exits
    with its command's code."""
    words = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if words[:1] == ["run"] and "--" in words:
        # Everything after `--` is the command, options included (argparse would read them).
        cut = words.index("--")
        words, command = words[:cut], words[cut + 1 :]
    top, commands = parsers()
    args, extra = top.parse_known_args(words)
    if extra and args.command == "run":
        # The command's own options (`run blog ls -la`) read as homeport's: say where `--` goes
        # rather than guess which options are whose.
        print(f"homeport: {runtime.dash_dash_hint(words[1:])}", file=sys.stderr)
        return 2
    if extra:
        # The command's usage, not the top level's: it is the one that took wrong words.
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "run":
        args.cmd = [*args.cmd, *command]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # dulwich logs every request at INFO; homeport's own lines are the useful ones.
    logging.getLogger("dulwich").setLevel(logging.WARNING)
    try:
        code: int = args.func(args, Context(Settings.from_env()))
        return code
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
