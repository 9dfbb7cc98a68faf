"""Browser sessions of the status page: a signed cookie, and a CSRF token that goes with it.

The cookie holds a random CSRF token and whether the holder logged in, signed (itsdangerous)
with a key derived from the API token: nothing is stored on the server, and a new token
ends every session. The key is never written anywhere, so it cannot be logged.

Every browser gets a cookie on its first page (the login form needs a CSRF token too); a
form POST is accepted only with the cookie's CSRF token in its `csrf` field, compared in
constant time. A cross-site page cannot read that token, and SameSite=Strict keeps the
cookie off cross-site requests in the first place.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from homeport.receiver.auth import same

COOKIE = "homeport_session"
# A login lasts a working day; after that the form asks for the token again.
MAX_AGE = 12 * 3600
# A cookie longer than this is not one homeport made; it is not even parsed.
MAX_COOKIE_CHARS = 1024
_KEY_LABEL = b"homeport status page session key v1"


@dataclass(frozen=True)
class Session:
    """What the cookie says: the CSRF token of this browser, and whether it logged in."""

    csrf: str
    logged_in: bool = False


def session_key(token: str) -> bytes:
    """The cookie signing key: derived from the token, so it never needs storing."""
    return hmac.new(token.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _serializer(token: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(session_key(token), salt="homeport-session")


def read(request: Request, token: str) -> Session | None:
    """The request's valid session, or None (absent, tampered with, expired)."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > MAX_COOKIE_CHARS:
        return None
    try:
        data = _serializer(token).loads(raw, max_age=MAX_AGE)
    except BadSignature:  # SignatureExpired included
        return None
    if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
        return None
    return Session(csrf=data["csrf"], logged_in=data.get("in") is True)


def new(logged_in: bool = False) -> Session:
    """A fresh session; logging in always starts a new one (no fixation)."""
    return Session(csrf=secrets.token_urlsafe(24), logged_in=logged_in)


def secure_request(request: Request, public_url: str) -> bool:
    """Whether the browser reaches homeport over https (directly, or as HOMEPORT_URL says)."""
    return request.url.scheme == "https" or public_url.startswith("https://")


def store(response: Response, session: Session, token: str, *, secure: bool) -> None:
    """Set the session cookie on a response."""
    value = _serializer(token).dumps({"csrf": session.csrf, "in": session.logged_in})
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def clear(response: Response, *, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)


def csrf_ok(session: Session | None, given: object) -> bool:
    """Whether a form's CSRF field matches the session's token (constant time)."""
    if session is None or not isinstance(given, str):
        return False
    return same(given, session.csrf)
