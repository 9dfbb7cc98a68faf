"""Clone URLs of webhooks: only what dulwich fetches over HTTP(S)."""

from __future__ import annotations

import pytest

from homeport.git.sources import SourceError, check_clone_url

REFUSED = [
    "http://h:99999/r.git",  # a port out of range: dulwich reads it as scp syntax, i.e. ssh
    "http://h:8o/r.git",
    "ssh://h/r.git",
    "git+ssh://h/r.git",
    "git@host:x",
    "host:x",
    "/abs/path",
    "relative/path",
    "ext::sh -c touch% /tmp/x",
    "git://h/r.git",
    "http:/h/r.git",
    "http://",
    "http://[::1/r.git",
    "",
]


@pytest.mark.parametrize("url", REFUSED)
@pytest.mark.parametrize("allow_file", [False, True])
def test_anything_but_http_is_refused(url: str, allow_file: bool) -> None:
    """Every URL that dulwich would not fetch with its HTTP client is refused, saying why."""
    with pytest.raises(SourceError, match="is not allowed: homeport fetches http"):
        check_clone_url(url, allow_file)


@pytest.mark.parametrize(
    "url", ["http://h/r.git", "https://git.home.lan:3000/me/r.git", "HTTPS://h/r", "http://u:p@h/r"]
)
def test_http_urls_are_allowed(url: str) -> None:
    """http(s) URLs with a host and a valid port pass."""
    assert check_clone_url(url, allow_file=False) == url


def test_file_urls_only_when_allowed() -> None:
    """file:// passes with HOMEPORT_ALLOW_FILE_URLS and names the setting otherwise."""
    assert check_clone_url("file:///srv/mirror/r.git", allow_file=True)
    with pytest.raises(SourceError, match="HOMEPORT_ALLOW_FILE_URLS=true"):
        check_clone_url("file:///srv/mirror/r.git", allow_file=False)


def test_credentials_never_show_in_the_refusal() -> None:
    """A refused URL is named without its password."""
    with pytest.raises(SourceError) as refused:
        check_clone_url("ssh://deploy:hunter2-secret@h/r.git", allow_file=False)
    assert "hunter2-secret" not in str(refused.value)
