"""Token checks shared by the git remote and the API."""

from __future__ import annotations

import base64
import hmac


def basic_password(header: str | None) -> str | None:
    """The password of an HTTP Basic Authorization header (any user name is accepted)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except ValueError:
        # binascii.Error, UnicodeDecodeError, and the ValueError of a non-ASCII header.
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


def bearer_token(header: str | None) -> str | None:
    if not header or not header.lower().startswith("bearer "):
        return None
    return header[7:].strip()


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing does not leak the token."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
