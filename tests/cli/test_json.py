"""--json on the commands that change something: the API's answer, as JSON on stdout."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli
from tests.support.gitservers import SshGit
from tests.support.records import make_app
from tests.support.servers import Homeport

SECRET = "ghp_json_answers_never_hold_it_7c1"


def _json(hp: Homeport, *args: str, stdin: str | None = None) -> Any:
    done = run_cli(hp, *args, "--json", stdin=stdin, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshGit]:
    server = SshGit(tmp_path / "sshd").start()
    yield server
    server.stop()


def test_hooks_rm_json_is_the_removed_hook(receiver: Homeport) -> None:
    """`hooks rm ID --json` prints the hook it removed."""
    make_app(receiver.data_dir, "blog")
    made = _json(receiver, "hooks", "create", "blog", "--rollback", "--within", "30m")
    removed = _json(receiver, "hooks", "rm", made["id"])
    assert removed["removed"]["id"] == made["id"]
    assert removed["removed"]["app"] == "blog"
    assert _json(receiver, "hooks", "list", "blog") == {"hooks": []}


def test_credentials_json_answers_hold_no_secret(receiver: Homeport) -> None:
    """credentials set, rm and ssh-key print the API's JSON, never the password."""
    prefix = "https://github.com/me/"
    stored = _json(
        receiver,
        "credentials",
        "set",
        prefix,
        "--username",
        "me",
        "--password-stdin",
        stdin=SECRET + "\n",
    )
    assert stored == {"prefix": prefix, "username": "me"}
    assert _json(receiver, "credentials", "rm", prefix) == {"removed": prefix}

    made = _json(receiver, "credentials", "ssh-key", "blog")
    assert (made["app"], made["created"]) == ("blog", True)
    assert made["public_key"].startswith("ssh-ed25519 ")
    again = _json(receiver, "credentials", "ssh-key", "blog")
    assert again == {**made, "created": False}
    assert _json(receiver, "credentials", "ssh-key", "rm", "blog") == {
        "app": "blog",
        "removed": True,
    }
    assert SECRET not in json.dumps([stored, made])


def test_trust_host_json_lists_the_pinned_keys(receiver: Homeport, sshd: SshGit) -> None:
    """`credentials trust-host HOST --json` prints each key it pinned."""
    host = f"127.0.0.1:{sshd.port}"
    fingerprint = subprocess.run(
        ["ssh-keygen", "-lf", str(sshd.root / "host_ed25519.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    pinned = _json(receiver, "credentials", "trust-host", host)
    assert [(k["host"], k["type"], k["fingerprint"]) for k in pinned["keys"]] == [
        (host, "ssh-ed25519", fingerprint)
    ]
