"""The homeport CLI run as a separate process, with only the HOMEPORT_* settings given."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.servers import TOKEN, Homeport


def homeport_cli(
    *args: str, stdin: str | None = None, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `python -m homeport ARGS` with `env` over this environment less its HOMEPORT_*.

    `stdin`, when given, is all the CLI reads from its standard input.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "homeport", *args],
        env=clean,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(
    hp: Homeport, *args: str, stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The CLI against hp, with its URL and token."""
    return homeport_cli(
        *args, stdin=stdin, timeout=timeout, HOMEPORT_URL=hp.url, HOMEPORT_TOKEN=TOKEN
    )
