"""Cron schedules: the grammar Kubernetes CronJobs accept, checked before a release is made.

Kubernetes parses `spec.schedule` with the standard five-field cron grammar (minute, hour,
day of month, month, day of week; `*`, `?`, lists, ranges, steps, month and weekday names) and
the descriptors @yearly .. @hourly. A schedule it would refuse must fail the push, not the
rollout of a release already live, so the same grammar is checked here, field by field, with
a message that names the part in error. When runs are due is croniter's to compute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# A schedule is one short line; anything longer is not one.
MAX_SCHEDULE_CHARS = 200
EXAMPLE = (
    'use five fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *", or '
    + ", ".join(DESCRIPTORS)
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    first_name: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1),
    _Field("day of week", 0, 6, _DAYS, 0),
)
_ITEM = re.compile(r"(?P<range>\*|\?|[0-9a-z]+(-[0-9a-z]+)?)(/(?P<step>[0-9]+))?")


def _value(text: str, field: _Field) -> int:
    if text.isascii() and text.isdigit():
        value = int(text)
    elif text.lower() in field.names:
        return field.names.index(text.lower()) + field.first_name
    else:
        raise ValueError(f"{field.name} {text!r} is not a number" + _names(field))
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.name} {value} is out of range {field.low}-{field.high}")
    return value


def _names(field: _Field) -> str:
    if not field.names:
        return ""
    return f" or a name ({field.names[0].upper()}-{field.names[-1].upper()})"


def _check_field(text: str, field: _Field) -> None:
    for item in text.split(","):
        match = _ITEM.fullmatch(item.lower())
        if match is None:
            raise ValueError(f"{field.name} {item!r} is not a value, range or step")
        step = match.group("step")
        if step is not None and int(step) == 0:
            raise ValueError(f"{field.name} {item!r} has a step of 0")
        span = item.split("/")[0]
        if span in ("*", "?"):
            continue
        low, _, high = span.partition("-")
        start = _value(low, field)
        if high and _value(high, field) < start:
            raise ValueError(f"{field.name} range {span!r} ends before it starts")


def problem(schedule: object) -> str | None:
    """None when Kubernetes accepts `schedule`, else what is wrong with it."""
    if not isinstance(schedule, str) or not schedule.strip():
        return "a schedule is a string"
    if len(schedule) > MAX_SCHEDULE_CHARS:
        return f"a schedule has at most {MAX_SCHEDULE_CHARS} characters"
    text = schedule.strip()
    if text.startswith("@"):
        return None if text.lower() in DESCRIPTORS else f"{text} is not a known descriptor"
    fields = text.split()
    if len(fields) != len(_FIELDS):
        return f"it has {len(fields)} fields, not 5"
    try:
        for part, field in zip(fields, _FIELDS, strict=True):
            _check_field(part, field)
    except ValueError as exc:
        return str(exc)
    return None


def next_run(schedule: str, after: float) -> float | None:
    """When a valid schedule next fires after `after` (unix seconds, UTC), if croniter says."""
    from croniter import croniter

    text = DESCRIPTORS.get(schedule.strip().lower(), schedule.strip())
    try:
        return float(croniter(text, after).get_next(float))
    except (ValueError, KeyError, TypeError):
        return None
