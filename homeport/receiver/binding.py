"""Which repository's webhooks may deploy an app.

Every repository whose webhook holds the secret can sign a delivery, and `?app=` is not
signed: without a binding, one repository's webhook could build its code as another app,
with that app's secrets and Ingress. The first webhook that deploys an app binds it to
its repository (`github:me/blog`); the token holder can change or clear the binding.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from homeport.errors import InvalidInput
from homeport.records import db

PROVIDERS = ("github", "gitea", "gitlab")
# provider:owner/name, GitLab's nested groups included; stored and shown in messages.
MAX_REPOSITORY = 255
_PATH = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")


class BindingError(InvalidInput):
    """A repository name homeport cannot bind an app to."""


def repository(provider: str, full_name: str) -> str:
    """'github', 'me/blog' -> 'github:me/blog', or BindingError if the name is malformed."""
    return check_repository(f"{provider}:{full_name}")


def check_repository(text: str) -> str:
    provider, sep, path = text.partition(":")
    if (
        not sep
        or provider not in PROVIDERS
        or len(text) > MAX_REPOSITORY
        or not _PATH.fullmatch(path)
        or any(part in (".", "..") for part in path.split("/"))
    ):
        shown = text if len(text) <= 80 else text[:80] + "..."
        raise BindingError(
            f"repository {shown!r} is not PROVIDER:OWNER/NAME with PROVIDER github, gitea or "
            "gitlab (e.g. 'github:me/blog')"
        )
    return text


def same_repository(a: str, b: str) -> bool:
    # GitHub, Gitea and GitLab treat owner and repository names case-insensitively.
    return a.lower() == b.lower()


def bound(conn: sqlite3.Connection, app: str) -> str | None:
    row = conn.execute("SELECT repository FROM app_sources WHERE app = ?", (app,)).fetchone()
    return None if row is None else str(row["repository"])


def claim(conn: sqlite3.Connection, app: str, source: str) -> str | None:
    """Bind an unbound app to `source`; None if allowed, else why the delivery is refused."""
    # OR IGNORE: of two first deliveries at once, the one that wrote first binds the app.
    conn.execute(
        "INSERT OR IGNORE INTO app_sources (app, repository, bound_at) VALUES (?, ?, ?)",
        (app, source, db.now()),
    )
    current = bound(conn, app)
    if current is None:
        return None
    if same_repository(current, source):
        return None
    return (
        f"app {app!r} is bound to {current}, not {source}; "
        f"change it with homeport source set {app} {source}"
    )


def lookup(data_dir: Path, app: str) -> str | None:
    with db.connect(data_dir) as conn:
        return bound(conn, app)


def bind(data_dir: Path, app: str, source: str) -> None:
    check_repository(source)
    with db.connect(data_dir) as conn:
        conn.execute(
            "INSERT INTO app_sources (app, repository, bound_at) VALUES (?, ?, ?) "
            "ON CONFLICT (app) DO UPDATE SET repository = excluded.repository, "
            "bound_at = excluded.bound_at",
            (app, source, db.now()),
        )


def unbind(data_dir: Path, app: str) -> None:
    with db.connect(data_dir) as conn:
        conn.execute("DELETE FROM app_sources WHERE app = ?", (app,))
