"""Which clone URLs a webhook may name (fetch.py fetches them)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from dulwich.client import (
    AbstractHttpGitClient,
    GitClient,
    LocalGitClient,
    get_transport_and_path,
)

from homeport.errors import InvalidInput


class SourceError(InvalidInput):
    """A clone URL homeport refuses to fetch from."""


def shown(url: str) -> str:
    """The URL without user name and password, for output and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _client(url: str, allow_file: bool) -> tuple[GitClient, str]:
    """The dulwich client that would fetch `url` and its path; SourceError unless HTTP(S).

    The scheme alone says too little: dulwich reads "http://h:99999/r.git" (a port out of
    range) as scp syntax and would run ssh with the worker's own keys and config, and
    "ext::", "host:path" and plain paths reach ssh or the local disk. So the client dulwich
    picks is what is checked.
    """
    refused = (
        f"clone URL {shown(url)[:200]!r} is not allowed: homeport fetches http(s) URLs with a "
        "host name and a valid port" + (", and file:// URLs" if allow_file else "")
    )
    try:
        client, path = get_transport_and_path(url, quiet=True)
        parts = urlsplit(url)
    except (ValueError, TypeError, KeyError):
        raise SourceError(f"{refused}; use the repository's http(s) clone URL") from None
    if isinstance(client, AbstractHttpGitClient):
        if parts.scheme.lower() in ("http", "https") and parts.hostname:
            return client, path
    elif isinstance(client, LocalGitClient) and parts.scheme.lower() == "file":
        if allow_file:
            return client, path
        raise SourceError(f"{refused}; file:// needs HOMEPORT_ALLOW_FILE_URLS=true")
    raise SourceError(f"{refused}; use the repository's http(s) clone URL")


def check_clone_url(url: str, allow_file: bool) -> str:
    """The URL, if homeport would fetch it over HTTP(S) (or file:// when allowed)."""
    _client(url, allow_file)
    return url
