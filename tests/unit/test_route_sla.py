"""SLA due times in business hours: across nights, weekends and holidays."""

from datetime import UTC, date, datetime

import pytest

from pipeline.route.calendar import BusinessCalendar, parse_duration_hours

PARIS = BusinessCalendar(timezone="Europe/Paris", holidays=[date(2026, 12, 25)])


@pytest.mark.parametrize(("start_utc", "hours", "due_paris"), [
    # Tuesday 10:00 Paris + 2 h: same day.
    (datetime(2026, 11, 24, 9, 0), 2, "2026-11-24 12:00"),
    # Tuesday 16:00 Paris + 4 h: 1 h today, 3 h tomorrow from 8:00 (across the night).
    (datetime(2026, 11, 24, 15, 0), 4, "2026-11-25 11:00"),
    # Friday 16:00 + 4 h: across the weekend to Monday 11:00.
    (datetime(2026, 11, 27, 15, 0), 4, "2026-11-30 11:00"),
    # Written on Saturday: the clock starts Monday 8:00.
    (datetime(2026, 11, 28, 10, 0), 2, "2026-11-30 10:00"),
    # Written at 22:00 Paris: starts next morning.
    (datetime(2026, 11, 24, 21, 0), 1, "2026-11-25 09:00"),
    # Thursday 24 Dec 16:00 + 2 h: 1 h today, Christmas and the weekend skipped → Mon 9:00.
    (datetime(2026, 12, 24, 15, 0), 2, "2026-12-28 09:00"),
    # 14 working days of 9 h (very difficult) from Tuesday 8 Dec 8:00: 13 days run to
    # Thursday 24, Christmas and the weekend are skipped, the 14th is Monday 28.
    (datetime(2026, 12, 8, 7, 0), 14 * 9, "2026-12-28 17:00"),
])
def test_due_time_counts_only_business_hours(start_utc, hours, due_paris):
    due = PARIS.add_business_hours(start_utc.replace(tzinfo=UTC), hours)
    assert due.strftime("%Y-%m-%d %H:%M") == due_paris


def test_daylight_saving_change_keeps_local_opening_hours():
    # Friday 27 March 2026 16:00 Paris (UTC+1) + 2 h → Monday 30 March 9:00 (now UTC+2).
    due = PARIS.add_business_hours(datetime(2026, 3, 27, 15, 0, tzinfo=UTC), 2)
    assert due.strftime("%Y-%m-%d %H:%M %z") == "2026-03-30 09:00 +0200"


def test_durations():
    assert parse_duration_hours("6h", 9) == 6
    assert parse_duration_hours("3d", 9) == 27
    assert parse_duration_hours("30min", 9) == 0.5
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_hours("3 weeks", 9)


def test_business_hours_check():
    assert PARIS.is_open(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))       # Tue 10:00
    assert not PARIS.is_open(datetime(2026, 11, 24, 16, 30, tzinfo=UTC))  # Tue 17:30
    assert not PARIS.is_open(datetime(2026, 12, 25, 9, 0, tzinfo=UTC))    # Christmas
