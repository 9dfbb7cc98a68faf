"""Fetching a webhook's commit with git: shallow by id, fallbacks, no secret left behind."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from homeport import apps
from homeport.git import credentials, fetch
from tests.support.gitservers import PrivateHttpGit, long_history

PASSWORD = "fetch-secret-7d1e4c"


@pytest.fixture
def private_http(tmp_path: Path) -> Iterator[PrivateHttpGit]:
    server = PrivateHttpGit(tmp_path / "served", "me", PASSWORD).start()
    yield server
    server.stop()


def _fetch(data_dir: Path, app: str, url: str, commit: str, lines: list[str]) -> Path:
    if not apps.exists(data_dir, app):
        apps.create_repo(data_dir, app, "main").close()
    repo_path = apps.repo_path(data_dir, app)
    fetch.fetch(
        data_dir=data_dir,
        repo_path=repo_path,
        app=app,
        url=url,
        ssh_url="",
        ref="refs/heads/main",
        commit=commit,
        allow_file=False,
        emit=lines.append,
        timeout=120,
        max_blob_bytes=256 * 1024**2,
    )
    return repo_path


def test_shallow_fetch_of_500_commits_transfers_a_fraction(
    tmp_path: Path, private_http: PrivateHttpGit
) -> None:
    """The pushed commit alone crosses the wire: under a tenth of a full fetch's bytes."""
    ids = long_history(private_http.bare("me/big"), 500, 2048)
    data_dir = tmp_path / "data"
    credentials.put(data_dir, f"http://127.0.0.1:{private_http.port}/me/", "me", PASSWORD)
    private_http.reset_count()
    lines: list[str] = []
    repo_path = _fetch(data_dir, "big", private_http.url("me/big"), ids[-1], lines)
    shallow = private_http.bytes_sent
    assert (repo_path / "shallow").read_text().split() == [ids[-1]]
    assert any("shallow, by commit id" in line for line in lines), lines
    # The same commit fetched whole by git itself, through the same server.
    full_repo = tmp_path / "full.git"
    subprocess.run(["git", "init", "-q", "--bare", str(full_repo)], check=True)
    private_http.reset_count()
    url = private_http.url("me/big").replace("http://", f"http://me:{PASSWORD}@")
    subprocess.run(["git", "--git-dir", str(full_repo), "fetch", "-q", url, ids[-1]], check=True)
    full = private_http.bytes_sent
    assert full > 500 * 2048
    assert shallow < full / 10, (shallow, full)


def test_a_server_that_serves_no_commit_by_id_falls_back_and_says_so(
    tmp_path: Path, private_http: PrivateHttpGit
) -> None:
    """Protocol v0 without fetch-by-id: the tip, then the whole branch when it moved on."""
    private_http.server.protocol_v2 = False  # type: ignore[union-attr]
    ids = long_history(private_http.bare("me/old"), 3, 64)
    data_dir = tmp_path / "data"
    credentials.put(data_dir, f"http://127.0.0.1:{private_http.port}/", "me", PASSWORD)
    lines: list[str] = []
    repo_path = _fetch(data_dir, "old", private_http.url("me/old"), ids[0], lines)
    said = "\n".join(lines)
    assert "does not serve a commit by its id; fetching the tip of refs/heads/main" in said
    assert f"{ids[0][:12]} is no longer the tip of refs/heads/main" in said
    check = subprocess.run(
        ["git", "--git-dir", str(repo_path), "cat-file", "-e", ids[0]], check=False
    )
    assert check.returncode == 0


def test_no_secret_is_left_in_the_repository(tmp_path: Path, private_http: PrivateHttpGit) -> None:
    """A stored password or one in the clone URL lands in no repo file and no command line."""
    ids = long_history(private_http.bare("me/site"), 2, 64)
    data_dir = tmp_path / "data"
    in_url = private_http.url("me/site").replace("http://", f"http://me:{PASSWORD}@")
    repo_path = _fetch(data_dir, "site", in_url, ids[-1], [])
    credentials.put(data_dir, f"http://127.0.0.1:{private_http.port}/", "me", PASSWORD)
    repo_path = _fetch(data_dir, "site2", private_http.url("me/site"), ids[-1], [])
    for path in [*repo_path.rglob("*"), *apps.repo_path(data_dir, "site").rglob("*")]:
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    # Checked by the server during each request, while git's processes were running.
    assert private_http.password_on_command_lines == []


def test_wrong_and_missing_credentials_say_what_to_do(
    tmp_path: Path, private_http: PrivateHttpGit
) -> None:
    """No credentials names the command to set them; wrong ones say they were refused."""
    ids = long_history(private_http.bare("me/blog"), 1, 64)
    data_dir = tmp_path / "data"
    url = private_http.url("me/blog")
    with pytest.raises(fetch.FetchError) as missing:
        _fetch(data_dir, "blog", url, ids[0], [])
    assert str(missing.value).startswith(
        f"authentication required for {url}: set credentials with homeport credentials set "
        f"http://127.0.0.1:{private_http.port}/me/ --username USER --password-stdin"
    )
    credentials.put(data_dir, f"http://127.0.0.1:{private_http.port}/me/", "me", "not-it-at-all")
    with pytest.raises(fetch.FetchError) as wrong:
        _fetch(data_dir, "blog", url, ids[0], [])
    assert "refused the credentials for" in str(wrong.value)
    assert "not-it-at-all" not in str(wrong.value)
