"""The command line alone: what the CLI says and exits with before it asks any server."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# No server listens here: a command that got as far as asking one would fail with exit 1.
NOWHERE = "http://127.0.0.1:9"


def _homeport(*args: str, python: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_URL=NOWHERE, HOMEPORT_TOKEN="x" * 16, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, *python, "-m", "homeport", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _pyproject_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
    return version


def test_version_prints_the_version_and_exits_0() -> None:
    """`homeport --version` is one line, `homeport <version>`, and exit 0."""
    shown = _homeport("--version")
    assert (shown.returncode, shown.stdout, shown.stderr) == (
        0,
        f"homeport {_pyproject_version()}\n",
        "",
    )


def test_version_of_a_checkout_that_is_not_installed_is_pyprojects() -> None:
    """Without the installed package's metadata (-S: no site-packages), pyproject.toml's."""
    shown = _homeport("--version", python=("-S",))
    assert (shown.returncode, shown.stdout) == (0, f"homeport {_pyproject_version()}\n")
