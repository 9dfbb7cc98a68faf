"""Cron schedules: the grammar Kubernetes CronJobs accept, and when they next fire."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from homeport import schedules


@pytest.mark.parametrize(
    "schedule",
    [
        "0 3 * * *",
        "*/5 * * * *",
        "0 0 1,15 * *",
        "1,2,3-7/2 * * * *",
        "5/15 * * * *",
        "0 0 ? * *",
        "0 9 * jan-Mar MON-fri",
        "30 2 * * 0",
        "  0 3 * * *  ",
        "@daily",
        "@Hourly",
        "@midnight",
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
    ],
)
def test_schedules_kubernetes_accepts_pass(schedule: str) -> None:
    """Five-field schedules with lists, ranges, steps, names and the descriptors are valid."""
    assert schedules.problem(schedule) is None


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 0 0 * *", "day of month 0 is out of range 1-31"),
        ("0 0 * 13 *", "month 13 is out of range 1-12"),
        ("0 0 * * 7", "day of week 7 is out of range 0-6"),
        ("0 3 * * * *", "it has 6 fields, not 5"),
        ("0 3 * *", "it has 4 fields, not 5"),
        ("*/0 * * * *", "minute '*/0' has a step of 0"),
        ("5-1 * * * *", "minute range '5-1' ends before it starts"),
        ("0 0 L * *", "day of month 'L' is not a number"),
        ("0 0 * FOO *", "month 'FOO' is not a number or a name (JAN-DEC)"),
        ("0 0 * * 1#2", "day of week '1#2' is not a value, range or step"),
        ("CRON_TZ=UTC 0 3 * * *", "it has 6 fields, not 5"),
        ("@reboot", "@reboot is not a known descriptor"),
        ("@every 5m", "@every 5m is not a known descriptor"),
        ("", "a schedule is a string"),
        (3, "a schedule is a string"),
        ("* " * 200, "a schedule has at most 200 characters"),
    ],
)
def test_schedules_kubernetes_refuses_say_why(schedule: object, problem: str) -> None:
    """A schedule Kubernetes would refuse is refused here, naming the part in error."""
    assert schedules.problem(schedule) == problem


def test_next_run_follows_the_schedule_and_the_descriptors() -> None:
    """The next run is computed in UTC, descriptors included."""
    now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC).timestamp()
    at = schedules.next_run("0 3 * * *", now)
    assert at is not None and datetime.fromtimestamp(at, UTC) == datetime(
        2026, 3, 2, 3, 0, tzinfo=UTC
    )
    hourly = schedules.next_run("@hourly", now)
    assert hourly is not None
    assert datetime.fromtimestamp(hourly, UTC) == datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
