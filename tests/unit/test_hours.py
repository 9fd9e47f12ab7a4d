"""Business hours (issue 22): ranges in a zone, overnight ranges, closed dates, and
daylight saving time changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.services.hours import BadSchedule, is_open, next_change, open_seconds, parse, to_json


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


SEOUL_OFFICE = {
    "timezone": "Asia/Seoul",
    "week": {
        d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
    },
    "closed": ["2026-12-25"],
}


def test_ranges_in_the_schedules_zone_with_a_lunch_break_and_a_closed_day():
    s = parse(SEOUL_OFFICE)
    assert is_open(s, utc(2026, 12, 7, 0, 0))  # Monday 09:00 in Seoul
    assert not is_open(s, utc(2026, 12, 7, 3, 30))  # 12:30, lunch
    assert next_change(s, utc(2026, 12, 7, 3, 30)) == utc(2026, 12, 7, 4, 0)
    assert next_change(s, utc(2026, 12, 7, 5, 0)) == utc(2026, 12, 7, 9, 0)  # closes 18:00
    # Friday evening: back Monday 09:00; Christmas (a Friday) is closed.
    assert not is_open(s, utc(2026, 12, 25, 1, 0))
    assert next_change(s, utc(2026, 12, 24, 10, 0)) == utc(2026, 12, 28, 0, 0)
    assert to_json(s) == SEOUL_OFFICE


def test_an_overnight_range_belongs_to_the_day_it_starts():
    s = parse({"timezone": "Europe/London", "week": {"fri": [["22:00", "02:00"]]}})
    assert is_open(s, utc(2026, 12, 4, 23, 0))  # Friday 23:00
    assert is_open(s, utc(2026, 12, 5, 1, 30))  # Saturday 01:30, still Friday's range
    assert not is_open(s, utc(2026, 12, 5, 2, 0))
    assert not is_open(s, utc(2026, 12, 5, 23, 0))  # Saturday has no range of its own
    assert next_change(s, utc(2026, 12, 5, 3, 0)) == utc(2026, 12, 11, 22, 0)
    closed = parse(
        {
            "timezone": "Europe/London",
            "week": {"fri": [["22:00", "02:00"]]},
            "closed": ["2026-12-04"],
        }
    )
    assert not is_open(closed, utc(2026, 12, 5, 1, 0))  # a closed Friday closes it all


def test_hours_keep_their_wall_clock_across_daylight_saving_changes():
    s = parse(
        {
            "timezone": "America/New_York",
            "week": {d: [["09:00", "17:00"]] for d in ("fri", "sat", "sun", "mon")},
        }
    )
    # Before the spring change (EST, UTC-5) and after it (EDT, UTC-4): 09:00 both days.
    assert next_change(s, utc(2026, 3, 7, 12, 0)) == utc(2026, 3, 7, 14, 0)  # Sat 09:00 EST
    assert next_change(s, utc(2026, 3, 7, 23, 0)) == utc(2026, 3, 8, 13, 0)  # Sun 09:00 EDT
    assert is_open(s, utc(2026, 3, 7, 14, 0)) and not is_open(s, utc(2026, 3, 7, 13, 59))
    assert is_open(s, utc(2026, 3, 8, 13, 0)) and not is_open(s, utc(2026, 3, 8, 12, 59))
    # Sunday 8 March is an hour shorter at night, not at work: 8 open hours either way.
    assert open_seconds(s, utc(2026, 3, 8, 0, 0), utc(2026, 3, 9, 0, 0)) == 8 * 3600
    # An overnight range across the change: 8 wall-clock hours are 7 real ones.
    night = parse({"timezone": "America/New_York", "week": {"sat": [["22:00", "06:00"]]}})
    assert open_seconds(night, utc(2026, 3, 7, 0, 0), utc(2026, 3, 9, 0, 0)) == 7 * 3600
    autumn = parse({"timezone": "America/New_York", "week": {"sat": [["22:00", "06:00"]]}})
    assert open_seconds(autumn, utc(2026, 10, 31, 0, 0), utc(2026, 11, 2, 0, 0)) == 9 * 3600


def test_open_seconds_count_only_business_time():
    s = parse(SEOUL_OFFICE)
    # Friday 17:30 to Monday 09:30 in Seoul: 30 minutes Friday, 30 minutes Monday.
    assert open_seconds(s, utc(2026, 12, 4, 8, 30), utc(2026, 12, 7, 0, 30)) == 3600
    assert open_seconds(None, utc(2026, 12, 4), utc(2026, 12, 5)) == 86400


@pytest.mark.parametrize(
    "data, field",
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "UTC", "week": {"funday": []}}, "week"),
        ({"timezone": "UTC", "week": {"mon": [["9:00", "17:00"]]}}, "week.mon.0"),
        ({"timezone": "UTC", "week": {"mon": [["09:00", "09:00"]]}}, "week.mon.0"),
        ({"timezone": "UTC", "week": {"mon": [["09:00"]]}}, "week.mon.0"),
        ({"timezone": "UTC", "week": {"mon": [["09:00", "10:00"]] * 7}}, "week.mon"),
        ({"timezone": "UTC", "closed": ["25/12/2026"]}, "closed"),
    ],
)
def test_a_bad_schedule_names_its_field(data, field):
    with pytest.raises(BadSchedule) as bad:
        parse(data)
    assert bad.value.field == field
