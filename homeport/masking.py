"""Masking secrets out of what people read: job output, notifications, build errors."""

from __future__ import annotations

from collections.abc import Iterable

from homeport.git import credentials
from homeport.settings import Settings

# Values shorter than this are not masked: replacing "1" or "on" everywhere would garble
# output while hiding nothing worth hiding.
MIN_SECRET_LENGTH = 4
MASK = "***"


class Masker:
    """Replaces secret values with *** in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted(set(self._secrets) | found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def known_secrets(settings: Settings) -> list[str]:
    """Every value homeport knows must never be shown: its settings' and stored credentials'."""
    found = settings.secrets()
    return found + [s for s in credentials.secrets(settings.data_dir) if s not in found]


def masker(settings: Settings) -> Masker:
    """A Masker for every secret homeport knows."""
    return Masker(known_secrets(settings))
