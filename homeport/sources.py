"""Fetching a webhook's commit from the repository it names (dulwich client)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from dulwich.client import get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.objects import ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from homeport.apps import has_commit
from homeport.errors import InvalidInput, StageError


class SourceError(InvalidInput):
    """A clone URL homeport refuses to fetch from."""


def shown(url: str) -> str:
    """The URL without user name and password, for output and messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def check_clone_url(url: str, allow_file: bool) -> str:
    """Only http(s) by default: a webhook must not make homeport read local paths."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return url
    if scheme == "file" and allow_file:
        return url
    allowed = "http, https or file" if allow_file else "http or https"
    raise SourceError(
        f"clone URL {shown(url)[:200]!r} is not allowed: use {allowed}"
        + ("" if allow_file else " (file:// needs HOMEPORT_ALLOW_FILE_URLS=true)")
    )


def fetch_commit(repo: Repo, url: str, ref: str, commit: str, allow_file: bool) -> None:
    """Fetch `ref` from `url` into `repo` and make sure `commit` arrived."""
    check_clone_url(url, allow_file)
    if has_commit(repo, commit):
        return
    try:
        client, path = get_transport_and_path(url, quiet=True)

        def wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
            head = refs.get(Ref(ref.encode()))
            return [head] if head else []

        client.fetch(path, repo, determine_wants=wants)
    except (GitProtocolError, HangupException, NotGitRepository, OSError) as exc:
        raise StageError(f"cannot fetch {ref} from {shown(url)}: {exc}") from exc
    if not has_commit(repo, commit):
        raise StageError(
            f"commit {commit[:12]} is not on {ref} at {shown(url)}; was the branch force-pushed?"
        )
