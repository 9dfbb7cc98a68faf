"""SSH clone URLs, host names and fingerprints (pure logic)."""

from __future__ import annotations

import base64
import hashlib
import shlex
from pathlib import Path

import pytest

from homeport.git import sshkeys


def test_ssh_urls_in_both_forms_are_understood() -> None:
    """ssh:// keeps its port and absolute path; scp-like keeps its relative path."""
    github = sshkeys.parse_ssh_url("git@github.com:me/blog.git")
    assert (github.user, github.host, github.port, github.path) == (
        "git",
        "github.com",
        22,
        "me/blog.git",
    )
    assert github.url == "git@github.com:me/blog.git"
    gitea = sshkeys.parse_ssh_url("ssh://git@Gitea.lan:2222/me/blog.git")
    assert gitea.url == "ssh://git@gitea.lan:2222/me/blog.git"
    assert gitea.known_name == "[gitea.lan]:2222"


@pytest.mark.parametrize(
    "url",
    [
        "-oProxyCommand=touch@x:y",
        "git@-oProxyCommand=x:me/blog.git",
        "ssh://git@host/-upload-pack=x",
        "ssh://git@host:99999/me/blog.git",
        "ssh://git:password@host/me/blog.git",
        "git@host:me/../../etc.git",
        "git@host:me/blog.git'; touch x",
        "github.com:me/blog.git",
        "https://github.com/me/blog.git",
        "",
    ],
)
def test_unsafe_or_malformed_ssh_urls_are_refused(url: str) -> None:
    """Option-like hosts, users and paths, passwords, bad ports and odd characters: refused."""
    with pytest.raises(sshkeys.SshError, match="is not an SSH clone URL"):
        sshkeys.parse_ssh_url(url)


def test_hosts_take_an_optional_port_and_nothing_else() -> None:
    """HOST and HOST:PORT parse; an option-like name or a bad port is refused."""
    assert sshkeys.parse_host("GitHub.com") == ("github.com", 22)
    assert sshkeys.parse_host("127.0.0.1:2222") == ("127.0.0.1", 2222)
    for bad in ("-oProxyCommand=x", "host:0", "host:65536", "host:x", "a b", 5):
        with pytest.raises(sshkeys.SshError):
            sshkeys.parse_host(bad)


def test_fingerprint_is_openssh_sha256() -> None:
    """The fingerprint is unpadded base64 of the SHA-256 of the key blob, as ssh-keygen -l."""
    blob = b"\x00\x00\x00\x0bssh-ed25519" + bytes(36)
    expected = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert sshkeys.fingerprint(base64.b64encode(blob).decode()) == f"SHA256:{expected}"


def test_ssh_command_trusts_only_the_pinned_hosts(tmp_path: Path) -> None:
    """GIT_SSH_COMMAND: the app's key alone, strict host keys from the data dir, no config."""
    words = shlex.split(sshkeys.ssh_command(tmp_path, "blog"))
    assert words[:3] == ["ssh", "-F", "/dev/null"]
    assert str(tmp_path / "ssh" / "keys" / "blog") in words
    for option in (
        "StrictHostKeyChecking=yes",
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        f"UserKnownHostsFile={tmp_path / 'ssh' / 'known_hosts'}",
    ):
        assert option in words
