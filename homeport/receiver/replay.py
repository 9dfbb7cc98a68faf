"""Deliveries and signatures seen before, so that a captured request cannot be sent again.

A webhook delivery is known by its delivery id and by the SHA-256 of its body: the id is
an unsigned header anyone can change, the body is what the signature covers. Both are kept
for DELIVERY_DAYS. A signed rollback's signature is kept until its timestamp expires.
Callers pass the connection of their transaction, so check and record cannot interleave.
"""

from __future__ import annotations

import hashlib
import sqlite3

from homeport import db

# GitHub shows deliveries for 30 days and can redeliver them; keep ours at least as long.
DELIVERY_DAYS = 30
_DELIVERY_SECONDS = DELIVERY_DAYS * 24 * 3600


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def seen_delivery(conn: sqlite3.Connection, delivery: str | None, digest: str) -> str | None:
    """The job of an earlier delivery with this id or this body, or None if it is new."""
    if delivery is not None:
        row = conn.execute("SELECT job_id FROM deliveries WHERE id = ?", (delivery,)).fetchone()
        if row is not None:
            return str(row["job_id"])
    row = conn.execute("SELECT job_id FROM delivery_bodies WHERE sha256 = ?", (digest,)).fetchone()
    return None if row is None else str(row["job_id"])


def remember_delivery(
    conn: sqlite3.Connection, delivery: str | None, digest: str, job_id: str
) -> None:
    """Record a delivery that made a job, and forget those older than DELIVERY_DAYS."""
    now = db.now()
    cutoff = now - _DELIVERY_SECONDS
    conn.execute("DELETE FROM deliveries WHERE received_at < ?", (cutoff,))
    conn.execute("DELETE FROM delivery_bodies WHERE received_at < ?", (cutoff,))
    if delivery is not None:
        conn.execute(
            "INSERT INTO deliveries (id, job_id, received_at) VALUES (?, ?, ?)",
            (delivery, job_id, now),
        )
    conn.execute(
        "INSERT INTO delivery_bodies (sha256, job_id, received_at) VALUES (?, ?, ?)",
        (digest, job_id, now),
    )


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
