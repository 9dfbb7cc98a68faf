"""Errors the deployer raises (see homeport.errors for the whole tree).

StageError
└── RolloutError           the cluster refused or the release never became ready
HomeportError
└── ReleaseUnavailable     a rollback target whose image or Secret is gone (release.py)
"""

from __future__ import annotations

from homeport.errors import StageError
from homeport.release import ReleaseUnavailable

__all__ = ["ReleaseUnavailable", "RolloutError"]


class RolloutError(StageError):
    """The cluster refused the release, or the release never became ready."""
