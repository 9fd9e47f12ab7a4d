"""Business hours: a weekly schedule in a time zone, several ranges a day, ranges that
run past midnight, and closed dates (issue 22). Pure functions over `Schedule`; the
team's schedule is kept in `team_settings` (services/availability.py).

A range belongs to the day it starts on: Monday's 22:00-02:00 covers Monday 22:00 to
Tuesday 02:00, and a closed Monday closes it all. Times are wall-clock times in the
schedule's zone, so a range keeps its hours across a change of daylight saving time
(the day is then an hour shorter or longer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
MAX_RANGES = 6
MAX_CLOSED = 366
SEARCH_DAYS = 400  # how far ahead "back at" looks (a year of closed dates)


class BadSchedule(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Schedule:
    zone: str
    # weekday (0 = Monday) -> ranges of minutes since midnight; end <= start runs
    # past midnight; end 1440 is midnight itself
    week: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    closed: frozenset[date] = frozenset()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())  # reads the zone files: tens of ms, once


def _minutes(text: str, where: str) -> int:
    if not isinstance(text, str) or not CLOCK.match(text):
        raise BadSchedule(where, "a time is HH:MM, 00:00 to 24:00")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def parse(data: object) -> Schedule:
    """A Schedule from the contract's JSON, or `BadSchedule` naming the field."""
    if not isinstance(data, dict):
        raise BadSchedule("hours", "an object")
    zone = data.get("timezone")
    if not isinstance(zone, str) or zone not in _zones():
        raise BadSchedule("timezone", "an IANA time zone, such as Asia/Seoul")
    week_in = data.get("week", {})
    if not isinstance(week_in, dict) or set(week_in) - set(DAYS):
        raise BadSchedule("week", f"an object whose keys are among {', '.join(DAYS)}")
    week = {}
    for day, ranges in week_in.items():
        if not isinstance(ranges, list) or len(ranges) > MAX_RANGES:
            raise BadSchedule(f"week.{day}", f"a list of at most {MAX_RANGES} ranges")
        parsed = []
        for n, pair in enumerate(ranges):
            where = f"week.{day}.{n}"
            if not isinstance(pair, list) or len(pair) != 2:
                raise BadSchedule(where, 'a range is ["HH:MM", "HH:MM"]')
            start, end = _minutes(pair[0], where), _minutes(pair[1], where)
            if start == end or start == 1440:
                raise BadSchedule(where, "a range must not be empty")
            parsed.append((start, end))
        week[DAYS.index(day)] = tuple(sorted(parsed))
    closed_in = data.get("closed", [])
    if not isinstance(closed_in, list) or len(closed_in) > MAX_CLOSED:
        raise BadSchedule("closed", f"a list of at most {MAX_CLOSED} dates")
    closed = set()
    for text in closed_in:
        try:
            closed.add(date.fromisoformat(text))
        except (TypeError, ValueError):
            raise BadSchedule("closed", "dates are YYYY-MM-DD") from None
    return Schedule(zone, week, frozenset(closed))


def to_json(schedule: Schedule) -> dict:
    def clock(m: int) -> str:
        return f"{m // 60:02d}:{m % 60:02d}"

    return {
        "timezone": schedule.zone,
        "week": {
            DAYS[d]: [[clock(a), clock(b)] for a, b in ranges]
            for d, ranges in sorted(schedule.week.items())
            if ranges
        },
        "closed": sorted(d.isoformat() for d in schedule.closed),
    }


def _local(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The moment of `minutes` past midnight on `day` in `tz`, as UTC. A wall time the
    clocks skip in spring counts as the same time an hour later (02:30 is 03:30); one
    they repeat in autumn is its first occurrence (PEP 495, fold 0)."""
    if minutes >= 1440:
        return _local(day + timedelta(days=1), minutes - 1440, tz)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz).astimezone(UTC)


def intervals(schedule: Schedule, start: datetime, end: datetime):
    """The open intervals (UTC) that touch [start, end), in order."""
    tz = schedule.tz
    first = start.astimezone(tz).date() - timedelta(days=1)  # yesterday's overnight range
    last = end.astimezone(tz).date()
    day = first
    while day <= last:
        if day not in schedule.closed:
            for a, b in schedule.week.get(day.weekday(), ()):
                opens = _local(day, a, tz)
                closes = _local(day, b if b > a else b + 1440, tz)
                # (a range inside the hour skipped in spring is empty that day)
                if closes > opens and closes > start and opens < end:
                    yield max(opens, start), min(closes, end)
        day += timedelta(days=1)


def is_open(schedule: Schedule | None, at: datetime) -> bool:
    if schedule is None:
        return True  # no schedule: always open
    return any(True for _ in intervals(schedule, at, at + timedelta(microseconds=1)))


def next_change(schedule: Schedule | None, at: datetime) -> datetime | None:
    """When the team opens (if closed at `at`) or closes (if open); None when never."""
    if schedule is None:
        return None
    horizon = at + timedelta(days=SEARCH_DAYS)
    if is_open(schedule, at):
        end = at
        for opens, closes in intervals(schedule, at, horizon):
            if opens > end:
                return end
            end = max(end, closes)
        return None
    for opens, _ in intervals(schedule, at, horizon):
        if opens > at:
            return opens
    return None


def open_seconds(schedule: Schedule | None, start: datetime, end: datetime) -> float:
    """How much of [start, end) the team was open (all of it with no schedule)."""
    if end <= start:
        return 0.0
    if schedule is None:
        return (end - start).total_seconds()
    merged_end = start
    total = 0.0
    for opens, closes in intervals(schedule, start, end):
        opens = max(opens, merged_end)
        if closes > opens:
            total += (closes - opens).total_seconds()
            merged_end = closes
    return total


def zone_exists(zone: str) -> bool:
    try:
        ZoneInfo(zone)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False
