"""The homeport CLI run as a separate process against a test server."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.servers import TOKEN, Homeport


def run_cli(
    hp: Homeport, *args: str, stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `python -m homeport ARGS` against hp, with its URL and token as the only HOMEPORT_*.

    `stdin`, when given, is all the CLI reads from its standard input.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_URL=hp.url, HOMEPORT_TOKEN=TOKEN)
    return subprocess.run(
        [sys.executable, "-m", "homeport", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
