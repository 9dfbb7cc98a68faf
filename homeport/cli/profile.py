"""Where the CLI keeps the server it logged in to: one small file in the user's config dir.

`homeport login URL` writes it (mode 0600, in a 0700 directory); HOMEPORT_URL and
HOMEPORT_TOKEN, when set, win over it. The CLI never makes up a token: the server's token is
made by `homeport up` on the box, or by the installation in the cluster.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from homeport.errors import ConfigError

FILENAME = "cli.json"


def path() -> Path:
    """$XDG_CONFIG_HOME/homeport/cli.json, else ~/.config/homeport/cli.json."""
    # The XDG base directory, not a homeport setting: where every CLI keeps its login.
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "homeport" / FILENAME


@dataclass(frozen=True)
class Profile:
    url: str
    token: str


def load() -> Profile | None:
    """The stored login, or None when there is none."""
    where = path()
    try:
        data = json.loads(where.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the CLI login in {where} ({exc}); log in again with `homeport login URL`"
        ) from None
    url = data.get("url") if isinstance(data, dict) else None
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(url, str) or not isinstance(token, str) or not url or not token:
        raise ConfigError(
            f"the CLI login in {where} is incomplete; log in again with `homeport login URL`"
        )
    return Profile(url, token)


def save(profile: Profile) -> Path:
    """Store the login readable by the user alone; returns where."""
    where = path()
    where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = where.with_name(f".{FILENAME}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": profile.url, "token": profile.token}, fh)
        fh.write("\n")
    # A rename: a login is there whole or not at all.
    temporary.replace(where)
    return where


def remove() -> bool:
    """Forget the login; False when there was none."""
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True
