"""`homeport login`: the CLI keeps a checked URL and token, and never makes a token up."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import homeport_cli
from tests.support.servers import TOKEN, Homeport


def _homeport(
    home: Path, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The CLI with a home of its own (no XDG_CONFIG_HOME) and only the settings given."""
    return homeport_cli(
        *args,
        stdin=stdin,
        timeout=60,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        HOMEPORT_DATA_DIR=str(home / "data"),
        **env,
    )


def test_login_checks_the_token_keeps_it_private_and_the_cli_uses_it(
    receiver: Homeport, tmp_path: Path
) -> None:
    """A good token is stored 0600 and used by later commands; logout forgets it."""
    home = tmp_path / "home"
    done = _homeport(home, "login", receiver.url, "--token-stdin", stdin=TOKEN + "\n")
    assert done.returncode == 0, done.stderr
    assert f"logged in to {receiver.url}" in done.stdout
    kept = home / ".config" / "homeport" / "cli.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    assert json.loads(kept.read_text()) == {"url": receiver.url, "token": TOKEN}
    assert TOKEN not in done.stdout + done.stderr

    listed = _homeport(home, "apps", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"apps": []}
    empty = _homeport(home, "apps")
    assert empty.stdout == (
        f"no apps yet; push to create one: git remote add homelab {receiver.url}/git/<app>.git"
        " && git push homelab main\n"
    )

    out = _homeport(home, "logout")
    assert out.returncode == 0 and not kept.exists()
    assert _homeport(home, "logout").stdout.startswith("not logged in")


def test_a_refused_token_is_not_kept(receiver: Homeport, tmp_path: Path) -> None:
    """A wrong token fails the login, says where the real one is, and stores nothing."""
    home = tmp_path / "home"
    wrong = "not-the-token-0123456789"
    done = _homeport(home, "login", receiver.url, "--token-stdin", stdin=wrong)
    assert done.returncode == 1
    assert "homeport login" in done.stderr and "DATA_DIR/token" in done.stderr
    assert wrong not in done.stderr
    assert not (home / ".config" / "homeport" / "cli.json").exists()


def test_without_a_token_the_cli_says_how_to_log_in_and_makes_none_up(
    receiver: Homeport, tmp_path: Path
) -> None:
    """No HOMEPORT_TOKEN, no login, no local homeport: an error, and no token file appears."""
    home = tmp_path / "home"
    done = _homeport(home, "apps", HOMEPORT_URL=receiver.url)
    assert done.returncode == 1
    assert done.stderr == (
        f"homeport: no token for homeport at {receiver.url}; log in with `homeport login"
        f" {receiver.url}`; the token is in the file `homeport up` prints on the box"
        " (DATA_DIR/token), or, for homeport in the cluster, `kubectl -n homeport exec"
        " deploy/homeport -- cat /data/token`\n"
    )
    assert not (home / "data" / "token").exists()


def test_a_login_token_goes_only_to_its_own_server(receiver: Homeport, tmp_path: Path) -> None:
    """HOMEPORT_URL naming another server does not get the token kept for this one."""
    home = tmp_path / "home"
    assert _homeport(home, "login", receiver.url, "--token-stdin", stdin=TOKEN).returncode == 0
    other = "http://127.0.0.1:9"
    done = _homeport(home, "apps", HOMEPORT_URL=other)
    assert done.returncode == 1 and f"no token for homeport at {other}" in done.stderr
    # With the token given too, the CLI goes where it is told.
    told = _homeport(home, "apps", HOMEPORT_URL=other, HOMEPORT_TOKEN=TOKEN)
    assert told.returncode == 1 and f"cannot reach homeport at {other}" in told.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("box.lan:8080", "is not an http(s) URL"),
        ("ftp://box.lan", "is not an http(s) URL"),
        ("http://me:pw@box.lan", "scheme, host, port and path only"),
        ("http://box.lan:99999", "bad port"),
    ],
)
def test_login_refuses_what_is_not_a_homeport_url(url: str, says: str, tmp_path: Path) -> None:
    """A URL the CLI cannot use is a usage error before any token is asked for."""
    done = _homeport(tmp_path, "login", url, "--token-stdin", stdin=TOKEN)
    assert done.returncode == 2 and says in done.stderr


def test_login_without_a_terminal_asks_for_token_stdin(receiver: Homeport, tmp_path: Path) -> None:
    """No terminal and no --token-stdin: a clear usage error, not a hang."""
    done = _homeport(tmp_path, "login", receiver.url, stdin="")
    assert done.returncode == 2 and "--token-stdin" in done.stderr
