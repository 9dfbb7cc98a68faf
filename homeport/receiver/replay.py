"""Deliveries and signatures seen before, so that a captured request cannot be sent again.

A webhook delivery is known by its delivery id and by the SHA-256 of its body: the id is
an unsigned header anyone can change, the body is what the signature covers. Both are
dedup keys of the deploy they made (lifecycle.submit_deploy keeps them 30 days). A signed
rollback's signature is kept until its timestamp expires.
"""

from __future__ import annotations

import hashlib
import sqlite3

from homeport.records import db


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def body_key(digest: str) -> str:
    """The dedup key of a delivery's body, kept beside its delivery id (lifecycle/intake.py)."""
    return f"sha256:{digest}"


def use_signature(conn: sqlite3.Connection, signature: str, expires_at: float) -> bool:
    """Record a signature as used; False when it was used before."""
    conn.execute("DELETE FROM used_signatures WHERE expires_at < ?", (db.now(),))
    try:
        conn.execute(
            "INSERT INTO used_signatures (signature, expires_at) VALUES (?, ?)",
            (signature, expires_at),
        )
    except sqlite3.IntegrityError:
        return False
    return True
