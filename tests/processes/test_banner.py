"""What `homeport up` says about reaching it, for each kind of listen address."""

from __future__ import annotations

import socket

import pytest

from homeport.processes.server import _reachability
from homeport.settings import Settings


def test_a_wildcard_listen_without_a_url_warns_and_names_this_machine() -> None:
    """0.0.0.0 is nobody's address: the URLs use the host name, and a warning says so."""
    (line,) = _reachability(Settings.from_env({"HOMEPORT_LISTEN": "0.0.0.0:8080"}))
    assert line.startswith("warning: HOMEPORT_URL is not set")
    assert f"http://{socket.gethostname()}:8080" in line


@pytest.mark.parametrize("listen", ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"])
def test_a_loopback_listen_says_other_machines_cannot_push(listen: str) -> None:
    """Listening on loopback is fine on the box; the note says how to open it up."""
    (line,) = _reachability(Settings.from_env({"HOMEPORT_LISTEN": listen}))
    assert line.startswith("note: homeport listens on")
    assert "HOMEPORT_LISTEN=0.0.0.0:8080" in line


@pytest.mark.parametrize(
    "env",
    [
        {"HOMEPORT_LISTEN": "0.0.0.0:8080", "HOMEPORT_URL": "http://box.lan:8080"},
        {"HOMEPORT_LISTEN": "192.168.1.10:8080"},
    ],
)
def test_a_reachable_address_needs_no_word(env: dict[str, str]) -> None:
    """A set HOMEPORT_URL, or a listen address others reach, prints nothing more."""
    assert _reachability(Settings.from_env(env)) == []
