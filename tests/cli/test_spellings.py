"""Heroku, Dokku and Kamal habits, and homeport's old spellings, against a real receiver."""

from __future__ import annotations

from tests.support.cli import run_cli as _cli
from tests.support.records import make_app, seed_app
from tests.support.servers import Homeport


def test_rollback_takes_the_release_as_releases_prints_it(receiver: Homeport) -> None:
    """`rollback blog v1`, `rollback blog 2` and `--to v1` reach the server as that release."""
    # v1 and v2 failed, v3 is live: each target is refused naming itself, with no registry.
    seed_app(receiver.data_dir, "blog", 3, failed_every=1)
    assert _cli(receiver, "releases", "blog").stdout.splitlines()[1].startswith("v3 ")
    for args, said in (
        (["v1"], "blog v1 never went live"),
        (["2"], "blog v2 never went live"),
        (["--to", "v1"], "blog v1 never went live"),
        (["--to", "3"], "blog v3 is already live"),
        (["V2", "--to", "2"], "blog v2 never went live"),
    ):
        refused = _cli(receiver, "rollback", "blog", *args)
        assert refused.returncode == 1, args
        assert refused.stderr.startswith(f"homeport: {said}"), args


def test_logs_n_num_and_tail_send_the_number_of_lines(receiver: Homeport) -> None:
    """-n N, --num N and --tail N all reach the server as the number of lines."""
    make_app(receiver.data_dir, "blog")
    for args in (["-n", "20000"], ["--num", "20000"], ["--tail", "20000"]):
        # The server's own limit answers before it looks for pods: proof of what it got.
        refused = _cli(receiver, "logs", "blog", *args)
        assert (refused.returncode, refused.stderr) == (
            1,
            "homeport: tail must be a number of lines from 0 to 10000, not '20000'\n",
        ), args


def test_ssh_key_rm_and_replace_with_the_old_flags_still_working(receiver: Homeport) -> None:
    """`ssh-key rm APP` and `--replace`; `--remove` and `--new` still work, with a hint."""
    made = _cli(receiver, "credentials", "ssh-key", "blog")
    assert made.returncode == 0, made.stderr
    replaced = _cli(receiver, "credentials", "ssh-key", "blog", "--replace")
    assert replaced.returncode == 0 and "old spelling" not in replaced.stderr
    assert replaced.stdout.startswith("ssh-ed25519 ") and replaced.stdout != made.stdout
    renewed = _cli(receiver, "credentials", "ssh-key", "blog", "--new")
    assert renewed.returncode == 0 and renewed.stdout != replaced.stdout
    assert renewed.stderr.startswith(
        "homeport: --new is an old spelling; use: homeport credentials ssh-key blog --replace\n"
    )
    removed = _cli(receiver, "credentials", "ssh-key", "rm", "blog")
    assert (removed.returncode, removed.stderr) == (0, "")
    assert removed.stdout == "removed the deploy key of blog; its webhooks fetch over HTTPS\n"
    assert receiver.api("GET", "/api/credentials").json()["ssh_keys"] == []

    _cli(receiver, "credentials", "ssh-key", "blog")
    old = _cli(receiver, "credentials", "ssh-key", "blog", "--remove")
    assert (old.returncode, old.stdout) == (0, removed.stdout)
    assert old.stderr == (
        "homeport: ssh-key APP --remove is an old spelling; use:"
        " homeport credentials ssh-key rm blog\n"
    )
    assert receiver.api("GET", "/api/credentials").json()["ssh_keys"] == []
    both = _cli(receiver, "credentials", "ssh-key", "rm", "blog", "--replace")
    assert both.returncode == 2


def test_cron_run_takes_the_verb_first_and_the_old_order_with_a_hint(receiver: Homeport) -> None:
    """`cron run APP NAME` starts NAME of APP; `cron APP run NAME` does too, with a hint."""
    seed_app(receiver.data_dir, "blog", 1)
    # v1 has no cron: the server's answer names the app and entry it was asked for.
    refused = "homeport: blog v1 has no cron 'backup' (its cron entries: none)"
    new = _cli(receiver, "cron", "run", "blog", "backup")
    assert new.returncode == 1 and new.stderr.startswith(refused), new.stderr
    old = _cli(receiver, "cron", "blog", "run", "backup")
    hint, said = old.stderr.split("\n", 1)
    assert (
        hint == "homeport: cron APP run NAME is an old spelling; use: homeport cron run blog backup"
    )
    assert old.returncode == 1 and said.startswith(refused)
    listed = _cli(receiver, "cron", "blog")
    assert (listed.returncode, listed.stderr) == (0, "")
    assert listed.stdout.split() == [
        "NAME",
        "SCHEDULE",
        "LAST",
        "RUN",
        "OUTCOME",
        "NEXT",
        "RUN",
        "JOB",
    ]
