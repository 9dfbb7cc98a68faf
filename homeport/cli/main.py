"""The `homeport` command line: one parser, each command group registering its own part."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from homeport.cli import apps, credentials, deploys, hooks, login, processes, runtime
from homeport.cli.client import Context, UsageError
from homeport.errors import HomeportError
from homeport.settings import Settings

# In `homeport --help` order.
GROUPS = (processes, login, apps, deploys, runtime, hooks, credentials)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="homeport", description="git push deployments to a single-node k3s homelab"
    )
    sub = top.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 done, 1 failed, 2 usage (argparse's own, and UsageError); `run` exits
    with its command's code."""
    words = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if words[:1] == ["run"] and "--" in words:
        # Everything after `--` is the command, options included (argparse would read them).
        cut = words.index("--")
        words, command = words[:cut], words[cut + 1 :]
    args = parser().parse_args(words)
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
