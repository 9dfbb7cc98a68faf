"""/api/credentials and `homeport credentials` against a real receiver (and a real sshd)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.gitservers import SshGit
from tests.support.servers import Homeport
from tests.support.webhooks import github, jobs_of, payload

SECRET = "ghp_credential_api_secret_91b2"


def _cli(hp: Homeport, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_cli(hp, *args, stdin=stdin, timeout=60)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshGit]:
    server = SshGit(tmp_path / "sshd").start()
    yield server
    server.stop()


def _all_output(hp: Homeport) -> str:
    """Every log the receiver wrote in its data dir."""
    return "".join(p.read_text(errors="replace") for p in hp.data_dir.glob("*.log"))


def test_api_stores_lists_and_removes_without_showing_the_password(receiver: Homeport) -> None:
    """PUT stores, GET lists prefixes and user names only, DELETE removes; 0600 on disk."""
    body = {"prefix": "https://GitHub.com/me/", "username": "me", "password": SECRET}
    put = receiver.api("PUT", "/api/credentials", json=body)
    assert put.status_code == 200, put.text
    assert put.json() == {"prefix": "https://github.com/me/", "username": "me"}
    listed = receiver.api("GET", "/api/credentials")
    assert listed.json()["credentials"] == [{"prefix": "https://github.com/me/", "username": "me"}]
    stored = receiver.data_dir / "credentials.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert SECRET in stored.read_text()
    gone = receiver.api("DELETE", "/api/credentials", json={"prefix": "https://github.com/me/"})
    assert gone.status_code == 200
    assert receiver.api("GET", "/api/credentials").json()["credentials"] == []
    for answer in (put, listed, gone):
        assert SECRET not in answer.text
    assert SECRET not in _all_output(receiver)


def test_api_bad_bodies_get_clear_4xx(receiver: Homeport) -> None:
    """Malformed bodies, bad prefixes and unknown prefixes are 400/404 with a reason."""
    cases = [
        ("PUT", b"{not json", 400, "not JSON"),
        ("PUT", b"[1]", 400, "JSON object"),
        ("PUT", json.dumps({"prefix": "ftp://x/", "username": "u", "password": "p"}), 400, "http"),
        ("PUT", json.dumps({"prefix": "https://x/", "username": "u"}), 400, "password"),
        ("PUT", b"{" + b" " * 20000 + b"}", 413, "body over"),
        ("DELETE", json.dumps({"prefix": "https://nowhere.example/"}), 404, "no credentials"),
        ("DELETE", b"{}", 400, "prefix"),
    ]
    for method, body, status, said in cases:
        answer = receiver.api(method, "/api/credentials", content=body)
        assert answer.status_code == status, (body, answer.text)
        assert said in answer.json()["error"], answer.text
    # The token guards these routes like every /api route.
    assert httpx.get(receiver.url + "/api/credentials").status_code == 401


def test_cli_reads_the_password_from_stdin_and_never_prints_it(receiver: Homeport) -> None:
    """credentials set/list/rm: the password comes from stdin and is shown nowhere."""
    prefix = "https://gitea.lan/me/"
    stored = _cli(
        receiver,
        "credentials",
        "set",
        prefix,
        "--username",
        "me",
        "--password-stdin",
        stdin=SECRET + "\n",
    )
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout == f"stored credentials for {prefix} (user me)\n"
    listed = _cli(receiver, "credentials", "list")
    assert listed.returncode == 0
    assert prefix in listed.stdout and "me" in listed.stdout
    empty = _cli(receiver, "credentials", "set", prefix, "--username", "me", "--password-stdin")
    assert empty.returncode == 2 and "reads the password from stdin" in empty.stderr
    removed = _cli(receiver, "credentials", "rm", prefix)
    assert removed.returncode == 0 and removed.stdout == f"removed the credentials for {prefix}\n"
    missing = _cli(receiver, "credentials", "rm", prefix)
    assert missing.returncode == 1 and "no credentials for" in missing.stderr
    for result in (stored, listed, removed, missing):
        assert SECRET not in result.stdout + result.stderr
    assert SECRET not in _all_output(receiver)


def test_ssh_key_is_made_once_and_only_its_public_half_is_shown(receiver: Homeport) -> None:
    """ssh-key prints an ed25519 public key; again prints the same; --new replaces it."""
    made = _cli(receiver, "credentials", "ssh-key", "keyed")
    assert made.returncode == 0, made.stderr
    public = made.stdout.strip()
    assert public.startswith("ssh-ed25519 ") and public.endswith(" homeport-keyed")
    assert "deploy key" in made.stderr
    assert _cli(receiver, "credentials", "ssh-key", "keyed").stdout.strip() == public
    private = (receiver.data_dir / "ssh" / "keys" / "keyed").read_text()
    assert "PRIVATE KEY" in private
    assert (receiver.data_dir / "ssh" / "keys" / "keyed").stat().st_mode & 0o777 == 0o600
    renewed = _cli(receiver, "credentials", "ssh-key", "keyed", "--new").stdout.strip()
    assert renewed != public and renewed.startswith("ssh-ed25519 ")
    listed = receiver.api("GET", "/api/credentials").json()
    assert listed["ssh_keys"] == ["keyed"]
    assert "PRIVATE" not in json.dumps(listed)
    bad = receiver.api("POST", "/api/credentials/ssh-keys/Not_An_App", json={})
    assert bad.status_code == 400 and "app name" in bad.json()["error"]
    none = receiver.api("GET", "/api/credentials/ssh-keys/nokey")
    assert none.status_code == 404 and "ssh-key nokey" in none.json()["error"]


def test_trust_host_pins_prints_fingerprints_and_refuses_a_changed_key(
    receiver: Homeport, sshd: SshGit
) -> None:
    """trust-host pins the key it prints; a changed key is 409 until --replace."""
    host = f"127.0.0.1:{sshd.port}"
    expected = subprocess.run(
        ["ssh-keygen", "-lf", str(sshd.root / "host_ed25519.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    wrong = _cli(receiver, "credentials", "trust-host", host, "--fingerprint", "SHA256:nope")
    assert wrong.returncode == 1 and "not SHA256:nope" in wrong.stderr
    trusted = _cli(receiver, "credentials", "trust-host", host, "--fingerprint", expected)
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout == f"pinned {host} ssh-ed25519 {expected}\n"
    pinned = (receiver.data_dir / "ssh" / "known_hosts").read_text()
    assert pinned.startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")

    sshd.stop()
    sshd.new_host_key()
    sshd.start()
    changed = receiver.api("POST", "/api/credentials/ssh-hosts", json={"host": host})
    assert changed.status_code == 409
    assert f"the SSH host key of {host} CHANGED" in changed.json()["error"]
    assert f"trust-host {host} --replace" in changed.json()["error"]
    replaced = _cli(receiver, "credentials", "trust-host", host, "--replace")
    assert replaced.returncode == 0 and expected not in replaced.stdout
    unreachable = receiver.api("POST", "/api/credentials/ssh-hosts", json={"host": "127.0.0.1:1"})
    assert unreachable.status_code == 400 and "could not read" in unreachable.json()["error"]
    for bad in ("-oProxyCommand=x", "host:99999", 7):
        answer = receiver.api("POST", "/api/credentials/ssh-hosts", json={"host": bad})
        assert answer.status_code == 400, bad


def test_webhook_for_an_app_with_a_key_needs_a_usable_ssh_url(receiver: Homeport) -> None:
    """No ssh_url or an unsafe one is 400 for an app with a deploy key; nothing is queued."""
    assert receiver.api("POST", "/api/credentials/ssh-keys/keyhook", json={}).status_code == 200
    https = "https://github.com/me/keyhook.git"
    for ssh_url, said in (
        (None, "names no SSH clone URL"),
        ("git@-oProxyCommand=x:me/keyhook.git", "is not an SSH clone URL"),
    ):
        body = json.dumps(payload(https, "a" * 40, name="keyhook", ssh_url=ssh_url)).encode()
        answer = github(receiver, body, delivery=f"d-{len(said)}")
        assert answer.status_code == 400, answer.text
        assert said in answer.json()["error"]
    assert jobs_of(receiver, "keyhook") == []
