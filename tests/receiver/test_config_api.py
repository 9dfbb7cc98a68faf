"""POST /api/apps/{app}/config refuses what it cannot release, before touching anything."""

from __future__ import annotations

from tests.support.servers import Homeport


def test_config_changes_that_are_not_one_are_400(receiver: Homeport) -> None:
    """A non-boolean deploy and an empty change are refused with what to send."""
    for body, message in (
        ({"set": {"A": "1"}, "deploy": "no"}, "deploy must be true"),
        ({"set": {"A": "1"}, "deploy": 0}, "deploy must be true"),
        ({}, "nothing to change"),
        ({"set": {}, "unset": [], "deploy": False}, "nothing to change"),
    ):
        response = receiver.api("POST", "/api/apps/blog/config", json=body)
        assert response.status_code == 400, (body, response.text)
        assert message in response.json()["error"]
