"""Names homeport accepts: app names, and the DNS-1123 labels Kubernetes objects need."""

from __future__ import annotations

import re

from homeport.errors import InvalidInput

# One DNS-1123 label: what a Kubernetes object name, a namespace or a host part may be.
LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# App names become Kubernetes object names, registry repositories and directory names:
# a DNS-1123 label, capped at 40 so that "<app>-v<N>" Secrets stay inside 63 characters.
MAX_APP_NAME = 40
_APP_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class AppNameError(InvalidInput):
    """The app name cannot be used."""


def check_app_name(name: str) -> str:
    """Return the name, or raise AppNameError saying what is allowed."""
    if len(name) > MAX_APP_NAME or not _APP_NAME.fullmatch(name):
        shown = name if len(name) <= 60 else name[:60] + "..."
        raise AppNameError(
            f"app name {shown!r} is not allowed: use at most {MAX_APP_NAME} lower-case letters, "
            "digits and '-', starting and ending with a letter or digit (e.g. 'blog')"
        )
    return name
