"""Errors the deployer raises (see homeport.errors for the whole tree).

StageError
└── RolloutError           the cluster refused or the release never became ready
    └── ApiError           the Kubernetes API answered with an error status (kube.py)
        ├── Conflict, Gone, NamespaceMissing   409, 410, a write into a missing namespace
        └── ClusterUnreachable   the API server cannot be reached (also an Unavailable)
HomeportError
└── ReleaseUnavailable     a rollback target whose image or Secret is gone (release.py)
"""

from __future__ import annotations

import json

from homeport.errors import StageError, Unavailable
from homeport.release import ReleaseUnavailable

__all__ = [
    "ApiError",
    "ClusterUnreachable",
    "Conflict",
    "Gone",
    "NamespaceMissing",
    "ReleaseUnavailable",
    "RolloutError",
    "missing_namespace",
    "status_message",
]


class RolloutError(StageError):
    """The cluster refused the release, or the release never became ready."""


class ApiError(RolloutError):
    """The API server answered with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Conflict(ApiError):
    """409: the object exists, or changed since it was read."""


class Gone(ApiError):
    """410: a watch's resourceVersion is too old."""


class NamespaceMissing(ApiError):
    """404 on a write into the namespace: the namespace itself does not exist."""


class ClusterUnreachable(ApiError, Unavailable):
    """The API server could not be reached, or kept answering 5xx, for RETRY_FOR seconds."""

    dependency = "Kubernetes"


def missing_namespace(body: bytes) -> bool:
    """Whether a 404's body says the namespace itself is missing."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return False
    details = data.get("details") if isinstance(data, dict) else None
    return isinstance(details, dict) and details.get("kind") == "namespaces"


def status_message(body: bytes) -> str:
    """The API server's message in an error body, or the body's start."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return body[:200].decode(errors="replace").strip()
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return body[:200].decode(errors="replace").strip()
