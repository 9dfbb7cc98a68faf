"""A release as a value: one numbered rollout of an app, as its record keeps it.

The deployer reads it to know what to apply; records/releases.py stores and loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from homeport.errors import Conflict

Status = Literal["deploying", "live", "failed", "rolled_back", "superseded"]
# What made a release: a git push, a provider's webhook, a rollback or a config change.
Cause = Literal["push", "webhook", "rollback", "config"]
# Statuses of releases that once served traffic, i.e. fit rollback targets.
WAS_LIVE: tuple[Status, ...] = ("live", "rolled_back", "superseded")


@dataclass(frozen=True)
class Release:
    """One numbered release of an app."""

    app: str
    version: int
    commit: str
    image: str
    config: dict[str, Any]
    status: Status
    reason: str
    created_at: float
    updated_at: float
    rollback_of: int | None = None
    job_id: str | None = None
    cause: Cause = "push"

    @property
    def digest(self) -> str:
        """`sha256:...` part of the image reference."""
        return self.image.rpartition("@")[2]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the API."""
        return {
            "app": self.app,
            "version": self.version,
            "commit": self.commit,
            "image": self.image,
            "config": self.config,
            "status": self.status,
            "reason": self.reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "rollback_of": self.rollback_of,
            "job_id": self.job_id,
            "cause": self.cause,
        }


class ReleaseUnavailable(Conflict):
    """A release cannot be deployed again: its image or its config Secret is gone."""
