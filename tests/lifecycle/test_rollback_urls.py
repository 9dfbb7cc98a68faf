"""Pure rules of rollback hooks, events and doctor: payloads, durations, secret strength."""

from __future__ import annotations

import pytest

from homeport.errors import InvalidInput
from homeport.lifecycle import rollback_urls
from homeport.notify import deliver, events
from homeport.processes import doctor


@pytest.mark.parametrize(
    "payload",
    [
        {"status": "resolved", "alerts": []},
        {"status": "Resolved"},
        {"state": "ok"},
        {"heartbeat": {"status": 1}},
        {"heartbeat": None, "msg": "test"},
    ],
)
def test_resolved_and_test_payloads_are_ignored(payload: object) -> None:
    """Alertmanager/Grafana resolved, Grafana ok, Kuma up and Kuma's test do nothing."""
    assert rollback_urls.ignored(payload) is not None


@pytest.mark.parametrize(
    "payload",
    [
        {"status": "firing", "alerts": [{"status": "firing"}]},
        {"state": "alerting", "status": "firing"},
        {"heartbeat": {"status": 0}},
        None,
        "plain text",
        [1, 2],
    ],
)
def test_alerts_and_unknown_payloads_act(payload: object) -> None:
    """Firing alerts, a down heartbeat and bodies homeport cannot read all mean 'broken'."""
    assert rollback_urls.ignored(payload) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800), (600, 600)]
)
def test_within_takes_durations(text: object, seconds: int) -> None:
    """--within takes seconds or a number with s, m, h or d."""
    assert rollback_urls.parse_within(text) == seconds


@pytest.mark.parametrize("text", ["0", "31d", "soon", "-5m", True, None, "1w"])
def test_within_refuses_what_is_not_a_sane_duration(text: object) -> None:
    """Zero, over 30 days, words and booleans are refused saying what fits."""
    with pytest.raises(InvalidInput, match="within must be a duration"):
        rollback_urls.parse_within(text)


def test_secret_strength_tells_random_from_guessable() -> None:
    """A generated token is strong; a repeated pattern of legal length is not."""
    assert doctor.strength("Zx3-kQ9_vB7mT2pL8wR4yN6h") > doctor.MIN_SECRET_BITS
    assert doctor.strength("abababababababababab") < doctor.MIN_SECRET_BITS
    assert doctor.strength("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") == 0


def test_the_outcome_line_names_each_target() -> None:
    """One line: each target ok or failed with its tries and why."""
    event = events.Event(event="release.live", app="a", version=3, commit="c" * 40, cause="push")
    line = deliver.summary(
        event,
        [
            deliver.Outcome("webhook https://h/…", True, 1),
            deliver.Outcome("ntfy://…", False, 3, "timed out"),
        ],
    )
    assert line == (
        "-----> notified release.live: webhook https://h/… ok;"
        " ntfy://… failed after 3 tries (timed out)"
    )
    assert event.title() == "a v3 is live"


def test_a_delivery_is_retried_with_backoff_then_given_up() -> None:
    """Three tries, waiting 1 s then 3 s; a refusal that cannot change is not retried."""
    waits: list[float] = []

    def dead() -> None:
        raise deliver.DeliveryError("connection refused")

    outcome = deliver.attempt("t", dead, sleep=waits.append)
    assert (outcome.ok, outcome.tries, waits) == (False, 3, [1.0, 3.0])

    def refused() -> None:
        raise deliver.DeliveryError("HTTP 404", retry=False)

    waits.clear()
    assert deliver.attempt("t", refused, sleep=waits.append).tries == 1 and waits == []
