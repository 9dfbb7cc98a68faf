"""The command line alone: what the CLI says and exits with before it asks any server."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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


def test_version_of_a_checkout_that_is_not_installed_is_pyprojects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the installed package's metadata, the version is pyproject.toml's."""
    import importlib.metadata

    from homeport.cli.main import version

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    # An editable install leaves its metadata in the checkout, where any run finds it.
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert version() == _pyproject_version()


def test_rollback_refuses_a_release_that_is_not_a_number() -> None:
    """RELEASE and --to take v3 or 3; anything else is a usage error naming the form."""
    for args in (["blog", "three"], ["blog", "--to", "v"], ["blog", "v0"], ["blog", "--to", "3x"]):
        refused = _homeport("rollback", *args)
        assert refused.returncode == 2, args
        assert "is not a release; give it as `homeport releases` shows it, e.g. v3" in (
            refused.stderr
        )


def test_rollback_takes_the_release_once() -> None:
    """A positional release and a different --to is a usage error, not a guess."""
    both = _homeport("rollback", "blog", "v2", "--to", "3")
    assert (both.returncode, both.stderr) == (
        2,
        "homeport: give the release once, e.g. homeport rollback blog v2\n",
    )


def test_unknown_words_get_the_commands_usage() -> None:
    """Words a command does not take show that command's usage, not the top level's."""
    extra = _homeport("rollback", "blog", "v2", "v3")
    assert extra.returncode == 2
    assert extra.stderr.startswith("usage: homeport rollback ")
    assert extra.stderr.endswith("homeport rollback: error: unrecognized arguments: v3\n")


def test_run_says_where_to_put_dash_dash_for_the_commands_options() -> None:
    """`run blog ls -la` is exit 2 with the line to type; homeport's options stay its own."""
    hint = "homeport: use -- before the command's options: "
    for args, fixed in (
        (["blog", "ls", "-la"], "homeport run blog -- ls -la"),
        (["blog", "ls", "-la", "/tmp", "--detach"], "homeport run blog --detach -- ls -la /tmp"),
        (
            ["--proc", "worker", "blog", "sh", "-c", "echo hi", "--det"],
            "homeport run blog --proc worker --det -- sh -c 'echo hi'",
        ),
        (
            ["blog", "--process=web", "du", "-sh", "/data"],
            "homeport run blog --process=web -- du -sh /data",
        ),
    ):
        refused = _homeport("run", *args)
        assert (refused.returncode, refused.stderr) == (2, f"{hint}{fixed}\n"), args


def test_run_json_needs_detach_and_a_command() -> None:
    """An attached run prints its command's output, so --json alone is a usage error."""
    attached = _homeport("run", "blog", "--json", "--", "ls")
    assert attached.returncode == 2
    assert attached.stderr.startswith("homeport: run --json needs --detach")
    nothing = _homeport("run", "blog", "--detach")
    assert (nothing.returncode, nothing.stderr) == (
        2,
        "homeport: name the command to run, e.g. homeport run blog -- ls -la\n",
    )


def test_run_without_dash_dash_still_reads_homeports_options() -> None:
    """Options after a command without options of its own stay homeport's (as before)."""
    # --json without --detach is refused before any request: proof it was read as homeport's.
    refused = _homeport("run", "blog", "backup.sh", "--json")
    assert refused.returncode == 2
    assert refused.stderr.startswith("homeport: run --json needs --detach")
    # With no unknown option, it gets as far as asking the server (there is none here).
    asked = _homeport("run", "blog", "ls", "/tmp", "--detach")
    assert asked.returncode == 1
    assert asked.stderr.startswith(f"homeport: cannot reach homeport at {NOWHERE}")


def test_logs_json_is_refused_with_the_reason() -> None:
    """Logs are text: --json is a usage error saying so, not an unknown option."""
    refused = _homeport("logs", "blog", "--json")
    assert (refused.returncode, refused.stderr) == (
        2,
        "homeport: logs are text, one line per line of output (TIME PROCESS[POD]: LINE), with"
        " no JSON form; drop --json\n",
    )


def test_logs_counts_lines_with_n_num_or_tail() -> None:
    """-n, --num and --tail take a number of lines; --tail alone (Heroku's) is accepted."""
    for args in (["-n", "x"], ["--num", "-3"], ["--tail", "ten"]):
        refused = _homeport("logs", "blog", *args)
        assert refused.returncode == 2, args
        assert "is not a number of lines, e.g. 20" in refused.stderr, args
    twice = _homeport("logs", "blog", "-n", "3", "--tail", "4")
    assert (twice.returncode, twice.stderr) == (
        2,
        "homeport: give the number of lines once, e.g. homeport logs blog -n 20\n",
    )
    for args in (["--tail"], ["--tail", "-n", "5"], ["-n", "5", "--tail", "5"]):
        asked = _homeport("logs", "blog", *args)
        assert asked.returncode == 1, args
        assert asked.stderr.startswith(f"homeport: cannot reach homeport at {NOWHERE}")


def test_cron_says_what_it_takes() -> None:
    """A cron command line missing the entry, or missing `run`, is exit 2 with the fix."""
    for args, said in (
        (["run", "blog"], "name the cron entry to run: homeport cron run blog NAME"),
        (["blog", "run"], "name the cron entry to run: homeport cron run blog NAME"),
        (["blog", "backup"], "did you mean: homeport cron run blog backup"),
        (["run", "blog", "backup", "now"], "cron takes APP, or run APP NAME"),
    ):
        refused = _homeport("cron", *args)
        assert refused.returncode == 2, args
        assert refused.stderr.startswith(f"homeport: {said}"), args
    assert _homeport("cron").returncode == 2
