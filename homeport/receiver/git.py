"""The git remote: dulwich's smart-HTTP WSGI app behind token auth and app-name checks."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from a2wsgi import WSGIMiddleware
from dulwich.errors import GitProtocolError, NotGitRepository
from dulwich.repo import Repo
from dulwich.server import DEFAULT_HANDLERS, Backend
from dulwich.web import make_wsgi_chain
from starlette.types import ASGIApp

from homeport import apps, names
from homeport.errors import NotFound
from homeport.receiver import shallow_clone
from homeport.receiver.auth import basic_password, same
from homeport.receiver.push.update import PushContext, handler_for
from homeport.receiver.throttle import Throttle

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# /<app>.git/<rest>; anything else under /git is refused before dulwich sees it.
_PATH = re.compile(r"/([^/]*)\.git(/.*)?", re.DOTALL)


class AppBackend(Backend):
    """Maps '/<app>.git' to the app's bare repository; nothing else is reachable."""

    def __init__(self, settings_data_dir: Path, max_blob_bytes: int) -> None:
        super().__init__()
        self.data_dir = settings_data_dir
        self.max_blob_bytes = max_blob_bytes

    def open_repository(self, path: str | bytes) -> Repo:
        text = path.decode() if isinstance(path, bytes) else str(path)
        name = text.strip("/").removesuffix(".git")
        try:
            return apps.open_repo(self.data_dir, name, max_blob_bytes=self.max_blob_bytes)
        except (names.AppNameError, NotFound) as exc:
            raise NotGitRepository(str(exc)) from exc


def _plain(start_response: StartResponse, status: str, text: str, **headers: str) -> list[bytes]:
    body = (text.rstrip("\n") + "\n").encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *headers.items(),
        ],
    )
    return [body]


def _guarded(
    app: WSGIApp, environ: dict[str, Any], start_response: StartResponse
) -> Iterator[bytes]:
    """dulwich's answer; a malformed git request ends it instead of raising.

    dulwich reads the request while it writes the answer, so a bad pkt-line raises after
    the status went out: all that is left to do is to end the body.
    """
    started = False

    def start(*args: Any) -> Any:
        nonlocal started
        started = True
        return start_response(*args)

    try:
        yield from app(environ, start)
    except GitProtocolError as exc:
        log.info("git request %s ended early: %s", environ.get("PATH_INFO"), exc)
        if not started:
            yield from _plain(start_response, "400 Bad Request", f"homeport: {exc}")


def git_app(context: PushContext, token: str, throttle: Throttle) -> WSGIApp:
    settings = context.settings
    handlers: dict[bytes, Callable[..., Any]] = dict(DEFAULT_HANDLERS)
    handlers[b"git-receive-pack"] = handler_for(context)
    backend = AppBackend(settings.data_dir, settings.max_blob_bytes)
    dulwich_app = make_wsgi_chain(backend, handlers=handlers)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        password = basic_password(environ.get("HTTP_AUTHORIZATION"))
        if not same(password, token):
            # git asks without a password first: only a wrong one counts as a guess.
            blocked = throttle.failed(environ.get("REMOTE_ADDR")) if password is not None else 0
            if blocked:
                return _plain(
                    start_response,
                    "429 Too Many Requests",
                    f"homeport: too many wrong passwords from this address; try again in "
                    f"{blocked} s",
                    **{"Retry-After": str(blocked)},
                )
            return _plain(
                start_response,
                "401 Unauthorized",
                "homeport: wrong or missing token; use the token from `homeport up` as the "
                "password (any user name)",
                **{"WWW-Authenticate": 'Basic realm="homeport"'},
            )
        match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
        if not match:
            return _plain(
                start_response, "404 Not Found", "homeport: git remotes look like /git/<app>.git"
            )
        name = match.group(1)
        try:
            names.check_app_name(name)
        except names.AppNameError as exc:
            return _plain(start_response, "400 Bad Request", f"homeport: {exc}")
        pushing = "git-receive-pack" in (
            match.group(2) or ""
        ) or "service=git-receive-pack" in environ.get("QUERY_STRING", "")
        if not apps.exists(settings.data_dir, name):
            if not pushing:
                return _plain(
                    start_response,
                    "404 Not Found",
                    f"homeport: app {name!r} does not exist; push to it to create it",
                )
            apps.create_repo(settings.data_dir, name, settings.deploy_branch)
        # uvicorn has already decoded a chunked body; left in place, the header would make
        # dulwich decode it a second time and fail on any push over git's 1 MiB postBuffer.
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        if shallow_clone.is_upload_pack_request(environ):
            refused = shallow_clone.refuse_deep_request(
                apps.repo_path(settings.data_dir, name), environ, start_response
            )
            if refused is not None:
                return refused
        return _guarded(dulwich_app, environ, start_response)

    return app


def asgi_git_app(context: PushContext, token: str, throttle: Throttle) -> ASGIApp:
    # Each push waiting for its deploy holds one thread; the API is async and unaffected.
    wsgi: Any = git_app(context, token, throttle)
    middleware: Any = WSGIMiddleware(wsgi, workers=context.settings.git_threads)
    asgi: ASGIApp = middleware
    return asgi
