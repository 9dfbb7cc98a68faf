"""Errors the deployer raises (see homeport.errors for the whole tree).

StageError
└── RolloutError           the cluster refused or the release never became ready
HomeportError
└── ReleaseUnavailable     a rollback target whose image or Secret is gone (API: 409)
"""

from __future__ import annotations

from homeport.errors import HomeportError, StageError


class RolloutError(StageError):
    """The cluster refused the release, or the release never became ready."""


class ReleaseUnavailable(HomeportError):
    """A release cannot be deployed again: its image is gone from the registry."""
