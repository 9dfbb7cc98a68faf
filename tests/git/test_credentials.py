"""HTTPS credentials in the data dir: prefixes, matching, validation, file mode."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from homeport import masking
from homeport.errors import NotFound
from homeport.git import credentials
from homeport.settings import Settings


def test_longest_matching_prefix_wins(tmp_path: Path) -> None:
    """A fetch uses the longest prefix that covers its URL, at a path boundary."""
    credentials.put(tmp_path, "https://github.com/", "any", "token-for-all")
    credentials.put(tmp_path, "https://github.com/me/", "me", "token-for-me")
    credentials.put(tmp_path, "https://github.com/me/blog", "blog", "token-for-blog")
    found = credentials.for_url(tmp_path, "https://github.com/me/blog.git")
    assert found is not None and found.password == "token-for-blog"
    found = credentials.for_url(tmp_path, "https://github.com/me/notes.git")
    assert found is not None and found.password == "token-for-me"
    # .../me does not cover .../meow: the prefix ends at a path boundary.
    credentials.put(tmp_path, "https://gitea.lan/me", "me", "token-gitea")
    assert credentials.for_url(tmp_path, "https://gitea.lan/meow/x.git") is None
    # Host and scheme compare without case; user info in the URL is ignored for matching.
    found = credentials.for_url(tmp_path, "HTTPS://someone@GitHub.com/other/x.git")
    assert found is not None and found.password == "token-for-all"
    assert credentials.for_url(tmp_path, "https://gitlab.com/me/blog.git") is None


@pytest.mark.parametrize(
    ("prefix", "url", "covered"),
    [
        # A host-only prefix covers that host alone, never a longer name that starts with it.
        ("https://gitea.lan", "https://gitea.lan.evil.example/x/y.git", False),
        ("https://gitea.lan", "https://gitea.lan/x/y.git", True),
        ("https://gitea.lan/", "https://gitea.lanx/x/y.git", False),
        # Scheme and port compare exactly, the scheme's default port included.
        ("https://gitea.lan", "http://gitea.lan/x/y.git", False),
        ("https://gitea.lan", "https://gitea.lan:8443/x/y.git", False),
        ("https://gitea.lan:443/me/", "https://gitea.lan/me/x.git", True),
        ("http://git.lan:3000/", "http://git.lan:3000/me/x.git", True),
        # The path at a boundary: a folder, or the repository with its .git.
        ("https://github.com/me", "https://github.com/me/blog.git", True),
        ("https://github.com/me", "https://github.com/me.evil/blog.git", False),
        ("https://github.com/me/blog", "https://github.com/me/blog.git", True),
        ("https://github.com/me/blog", "https://github.com/me/blog-fork.git", False),
        ("https://github.com/me/blog", "https://github.com/me/blog.gitx", False),
    ],
)
def test_a_prefix_covers_its_own_origin_and_path_only(prefix: str, url: str, covered: bool) -> None:
    """Matching compares scheme, host and port, then the path at a boundary: a credential
    never goes to a host whose name merely starts with its host's."""
    assert credentials.matches(credentials.normalize_prefix(prefix), url) is covered


def test_the_file_is_private_and_passwords_are_masked(tmp_path: Path) -> None:
    """credentials.json is 0600, listing shows no password, and the masker knows it."""
    credentials.put(tmp_path, "https://github.com/me/", "me", "ghp_secret_value_1")
    mode = stat.S_IMODE((tmp_path / credentials.FILE_NAME).stat().st_mode)
    assert mode == 0o600
    listed = [c.public() for c in credentials.load(tmp_path)]
    assert listed == [{"prefix": "https://github.com/me/", "username": "me"}]
    settings = Settings(data_dir=tmp_path, token="t" * 20)
    assert "ghp_secret_value_1" in masking.known_secrets(settings)


def test_bad_credentials_are_refused_by_name(tmp_path: Path) -> None:
    """Non-http prefixes, user info in the prefix, newlines and empty values are refused."""
    cases = [
        ("ssh://github.com/me/", "me", "x", r"http\(s\) URL"),
        ("github.com/me/", "me", "x", r"http\(s\) URL"),
        ("https://me:pw@github.com/", "me", "x", "must not hold a user name"),
        ("https://github.com/", "me\nx", "x", "username"),
        ("https://github.com/", "me", "pw\nprotocol=https", "password"),
        ("https://github.com/", "me", "", "password"),
        ("https://github.com/", None, "x", "username"),
    ]
    for prefix, username, password, said in cases:
        with pytest.raises(credentials.CredentialError, match=said):
            credentials.put(tmp_path, prefix, username, password)
    assert credentials.load(tmp_path) == []


def test_remove_forgets_and_unknown_prefix_is_not_found(tmp_path: Path) -> None:
    """rm removes the prefix (whatever the host's case); an unknown one is NotFound."""
    credentials.put(tmp_path, "https://github.com/me/", "me", "token-1234")
    credentials.remove(tmp_path, "https://GITHUB.com/me/")
    assert credentials.load(tmp_path) == []
    with pytest.raises(NotFound, match=r"no credentials for https://github\.com/me/"):
        credentials.remove(tmp_path, "https://github.com/me/")
