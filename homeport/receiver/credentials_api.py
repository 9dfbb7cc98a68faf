"""The /api/credentials routes: HTTPS credentials, deploy keys and pinned SSH host keys.

No answer ever carries a password or a private key: credentials are listed by prefix and
user name, deploy keys by their public half.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from homeport import names
from homeport.errors import InvalidInput, TooLarge
from homeport.git import credentials, sshkeys
from homeport.receiver.state import State, parse_json, read_capped

# A credential is a prefix, a user name and a token: a few KB at most.
MAX_BODY = 16 * 1024


def _data_dir(request: Request) -> Any:
    state: State = request.app.state.homeport
    return state.settings.data_dir


async def _body(request: Request, example: str) -> dict[str, Any]:
    raw = await read_capped(request, MAX_BODY)
    if raw is None:
        raise TooLarge(f"body over {MAX_BODY} bytes")
    try:
        data = parse_json(raw) if raw.strip() else {}
    except ValueError as exc:
        raise InvalidInput(f"{exc}; send {example}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"send a JSON object: {example}")
    return data


async def credentials_route(request: Request) -> Response:
    """GET lists; PUT {"prefix", "username", "password"} stores; DELETE {"prefix"} removes."""
    data_dir = _data_dir(request)
    if request.method == "PUT":
        data = await _body(
            request, '{"prefix": "https://github.com/me/", "username": "me", "password": "TOKEN"}'
        )
        stored = await asyncio.to_thread(
            credentials.put,
            data_dir,
            data.get("prefix"),
            data.get("username"),
            data.get("password"),
        )
        return JSONResponse(stored.public())
    if request.method == "DELETE":
        data = await _body(request, '{"prefix": "https://github.com/me/"}')
        await asyncio.to_thread(credentials.remove, data_dir, data.get("prefix"))
        return JSONResponse({"removed": credentials.normalize_prefix(data.get("prefix"))})  # type: ignore[arg-type]

    def listing() -> dict[str, Any]:
        return {
            "credentials": [c.public() for c in credentials.load(data_dir)],
            "ssh_keys": sshkeys.list_keys(data_dir),
            "ssh_hosts": sshkeys.pinned_hosts(data_dir),
        }

    return JSONResponse(await asyncio.to_thread(listing))


async def ssh_key(request: Request) -> Response:
    """GET the app's public deploy key; POST makes one ({"replace": true} a new one); DELETE."""
    app = names.check_app_name(request.path_params["app"])
    data_dir = _data_dir(request)
    if request.method == "POST":
        data = await _body(request, '{} or {"replace": true}')
        replace = data.get("replace", False)
        if not isinstance(replace, bool):
            raise InvalidInput('"replace" must be true or false')
        public, created = await asyncio.to_thread(sshkeys.make_key, data_dir, app, replace=replace)
        return JSONResponse({"app": app, "public_key": public, "created": created})
    if request.method == "DELETE":
        await asyncio.to_thread(sshkeys.remove_key, data_dir, app)
        return JSONResponse({"app": app, "removed": True})
    public = await asyncio.to_thread(sshkeys.public_key, data_dir, app)
    return JSONResponse({"app": app, "public_key": public, "created": False})


async def ssh_host(request: Request) -> Response:
    """POST {"host", "fingerprint"?, "replace"?}: read the host's keys and pin them."""
    data = await _body(request, '{"host": "github.com"}')
    expect = data.get("fingerprint")
    replace = data.get("replace", False)
    if expect is not None and not isinstance(expect, str):
        raise InvalidInput('"fingerprint" must be a string like "SHA256:..."')
    if not isinstance(replace, bool):
        raise InvalidInput('"replace" must be true or false')
    keys = await asyncio.to_thread(
        sshkeys.trust, _data_dir(request), data.get("host"), expect=expect, replace=replace
    )
    return JSONResponse({"keys": keys})
