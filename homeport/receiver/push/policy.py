"""Which ref updates a push may make, checked before anything moves."""

from __future__ import annotations

ZERO = "0" * 40


def refuse_update(deploy_branch: str, ref: str, new: str) -> str | None:
    """A reason to refuse this ref update, or None to allow it."""
    if ref == f"refs/heads/{deploy_branch}" and new == ZERO:
        return (
            f"deleting '{deploy_branch}' is not allowed: it names the commit that is live; "
            "push another commit to change what runs"
        )
    return None


def deploys(deploy_branch: str, ref: str, new: str) -> bool:
    """Whether this update starts a deploy."""
    return ref == f"refs/heads/{deploy_branch}" and new != ZERO
