"""Heroku, Dokku and Kamal habits, and homeport's old spellings, against a real receiver."""

from __future__ import annotations

from tests.support.cli import run_cli as _cli
from tests.support.records import seed_app
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
