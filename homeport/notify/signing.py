"""HMAC signatures with the webhook secret: what signed rollbacks carry and what homeport's
own event webhook sends, so one recipe verifies both.

The signature covers a timestamp, the method, the path (no query string) and the raw body:
`sha256=` + hex HMAC-SHA256 of f"{timestamp}\\n{METHOD}\\n{path}\\n" + body.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Homeport-Signature-256"
TIMESTAMP_HEADER = "X-Homeport-Timestamp"


def string_to_sign(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    """What a signature signs: f"{timestamp}\\n{METHOD}\\n{path}\\n" + body."""
    return f"{timestamp}\n{method}\n{path}\n".encode() + body


def digest(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of the string to sign."""
    message = string_to_sign(timestamp, method, path, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The X-Homeport-Signature-256 value: `sha256=<hex>`."""
    return "sha256=" + digest(secret, timestamp, method, path, body)
