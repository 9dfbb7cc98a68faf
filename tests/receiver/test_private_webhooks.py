"""Webhook deploys from private repositories over HTTPS and SSH, to the test cluster."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gitservers import PrivateHttpGit, SshGit
from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport
from tests.support.webhooks import github, payload

TOKEN_VALUE = "glpat-private-repo-token-5f3a9c"
WRONG_VALUE = "glpat-wrong-token-value-0b7e21"


@pytest.fixture
def private_http(tmp_path: Path) -> Iterator[PrivateHttpGit]:
    server = PrivateHttpGit(tmp_path / "served", "me", TOKEN_VALUE).start()
    yield server
    server.stop()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshGit]:
    server = SshGit(tmp_path / "sshd").start()
    yield server
    server.stop()


def _app() -> str:
    return f"p{uuid.uuid4().hex[:10]}"


def _deliver(hp: Homeport, app: str, commit: str, clone_url: str, **extra: Any) -> dict[str, Any]:
    """Send a signed push for `commit` (a new delivery each time) and wait for its job."""
    body = payload(clone_url, commit, name=app, ssh_url=extra.pop("ssh_url", None))
    body["delivery"] = uuid.uuid4().hex  # a new body: the same one would be a replay
    answer = github(hp, json.dumps(body).encode(), delivery=uuid.uuid4().hex)
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = hp.wait_job(app, answer.json()["job"], timeout=240)
    job["log"] = hp.api("GET", f"/api/apps/{app}/jobs/{job['id']}/log").text
    return job


def _everything_said(hp: Homeport, app: str) -> str:
    """Job logs, job and credential API answers, and the server's and workers' logs."""
    said = [hp.api("GET", f"/api/apps/{app}/jobs").text, hp.api("GET", "/api/credentials").text]
    for path in [*hp.data_dir.glob("*.log"), *(hp.data_dir / "logs").rglob("*")]:
        if path.is_file():
            said.append(path.read_text(errors="replace"))
    return "\n".join(said)


def test_https_private_repository_deploys_with_credentials_and_fails_clearly_without(
    homeport: Homeport, private_http: PrivateHttpGit, tmp_path: Path
) -> None:
    """No credentials and wrong ones fail saying what to do; right ones deploy, shallow."""
    app = _app()
    work = WorkTree(tmp_path / "work")
    commit = work.commit("first", **{"index.html": "private blog"})
    assert work.push(str(private_http.bare(f"me/{app}"))).returncode == 0
    url = private_http.url(f"me/{app}")
    prefix = f"http://127.0.0.1:{private_http.port}/me/"

    missing = _deliver(homeport, app, commit, url)
    assert missing["status"] == "failed"
    assert missing["reason"].startswith(
        f"authentication required for {url}: set credentials with homeport credentials set "
        f"{prefix} --username USER --password-stdin"
    )

    body = {"prefix": prefix, "username": "me", "password": WRONG_VALUE}
    assert homeport.api("PUT", "/api/credentials", json=body).status_code == 200
    wrong = _deliver(homeport, app, commit, url)
    assert wrong["status"] == "failed"
    assert f"refused the credentials for {prefix} (user 'me')" in wrong["reason"]

    body["password"] = TOKEN_VALUE
    assert homeport.api("PUT", "/api/credentials", json=body).status_code == 200
    deployed = _deliver(homeport, app, commit, url)
    assert deployed["status"] == "succeeded", deployed
    assert f"-----> Fetching refs/heads/main from {url}" in deployed["log"]
    assert f"fetched {commit[:12]} (shallow, by commit id" in deployed["log"]

    said = _everything_said(homeport, app)
    assert TOKEN_VALUE not in said and WRONG_VALUE not in said


def test_ssh_deploy_key_with_pinned_host_key(
    homeport: Homeport, sshd: SshGit, tmp_path: Path
) -> None:
    """Unknown host fails with its fingerprint; trusted deploys; a changed key fails loudly."""
    app = _app()
    work = WorkTree(tmp_path / "work")
    first = work.commit("first", **{"index.html": "over ssh"})
    assert work.push(str(sshd.bare(app))).returncode == 0
    made = homeport.api("POST", f"/api/credentials/ssh-keys/{app}", json={})
    assert made.status_code == 200, made.text
    sshd.authorize(made.json()["public_key"])
    ssh_url = sshd.url(app)
    host = f"127.0.0.1:{sshd.port}"
    # The HTTPS clone URL leads nowhere: an app with a deploy key is fetched over SSH.
    https_url = "http://127.0.0.1:1/me/nowhere.git"
    fingerprint = subprocess.run(
        ["ssh-keygen", "-lf", str(sshd.root / "host_ed25519.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]

    unknown = _deliver(homeport, app, first, https_url, ssh_url=ssh_url)
    assert unknown["status"] == "failed"
    assert f"the SSH host {host} is not trusted yet; it offers {fingerprint}" in unknown["reason"]
    assert f"run homeport credentials trust-host {host}" in unknown["reason"]

    trusted = homeport.api("POST", "/api/credentials/ssh-hosts", json={"host": host})
    assert trusted.status_code == 200, trusted.text
    deployed = _deliver(homeport, app, first, https_url, ssh_url=ssh_url)
    assert deployed["status"] == "succeeded", deployed
    assert f"-----> Fetching refs/heads/main from {ssh_url}" in deployed["log"]

    second = work.commit("second", **{"index.html": "changed host"})
    assert work.push(str(sshd.bare(app))).returncode == 0
    sshd.stop()
    sshd.new_host_key()
    sshd.start()
    changed = _deliver(homeport, app, second, https_url, ssh_url=ssh_url)
    assert changed["status"] == "failed"
    assert f"the SSH host key of {host} CHANGED" in changed["reason"]
    assert f"trust-host {host} --replace" in changed["reason"]

    private_key = (homeport.data_dir / "ssh" / "keys" / app).read_text().splitlines()[1]
    assert private_key not in _everything_said(homeport, app)


def test_a_shallow_repository_still_rolls_back_and_takes_pushes(
    homeport: Homeport, private_http: PrivateHttpGit, tmp_path: Path
) -> None:
    """After shallow webhook deploys, a rollback moves the branch and a git push deploys."""
    app = _app()
    prefix = f"http://127.0.0.1:{private_http.port}/"
    body = {"prefix": prefix, "username": "me", "password": TOKEN_VALUE}
    assert homeport.api("PUT", "/api/credentials", json=body).status_code == 200
    work = WorkTree(tmp_path / "work")
    url = private_http.url(f"me/{app}")
    commits = []
    for n in range(2):
        commits.append(work.commit(f"c{n}", **{"index.html": f"version {n}"}))
        assert work.push(str(private_http.bare(f"me/{app}"))).returncode == 0
        job = _deliver(homeport, app, commits[-1], url)
        assert job["status"] == "succeeded", job
    bare = homeport.data_dir / "repos" / f"{app}.git"
    assert (bare / "shallow").is_file()

    rolled = homeport.api("POST", f"/api/apps/{app}/rollback", json={"version": 1})
    assert rolled.status_code == 202, rolled.text
    job = homeport.wait_job(app, rolled.json()["job"], timeout=240)
    assert job["status"] == "succeeded", job
    branch = subprocess.run(
        ["git", "--git-dir", str(bare), "rev-parse", "refs/heads/main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert branch == commits[0]

    work.commit("pushed", **{"index.html": "pushed with the token"})
    pushed = work.push(homeport.remote(app), "main", "--force")
    assert pushed.returncode == 0, pushed.stderr
    assert "is live" in pushed.stderr

    # A clone from homeport must be shallow too, and a deep one says so.
    deep = work.git("clone", homeport.remote(app), str(tmp_path / "deep"), check=False)
    assert deep.returncode != 0
    assert "remote error: this app's repository is shallow" in deep.stderr
    assert "--depth=1" in deep.stderr
    shallow = work.git("clone", "--depth=1", homeport.remote(app), str(tmp_path / "shallow"))
    assert shallow.returncode == 0
