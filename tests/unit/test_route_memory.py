"""What route remembers of each account's cases (so a merged follow-up follows its case)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.route.core import REMEMBERED_AT, needs_refresh, remember_case

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TECH = {"queue": "tech", "priority": "high", "rule": "bugs"}


def test_cases_silent_longer_than_the_limit_are_forgotten():
    known: dict = {}
    known = remember_case(known, "case-old", TECH, NOW - timedelta(days=40), NOW,
                          max_age_days=30, max_cases=200)
    known = remember_case(known, "case-recent", TECH, NOW - timedelta(days=3), NOW,
                          max_age_days=30, max_cases=200)
    known = remember_case(known, "case-new", TECH, NOW, NOW, max_age_days=30, max_cases=200)
    assert list(known) == ["case-recent", "case-new"]
    assert known["case-new"] == {**TECH, REMEMBERED_AT: NOW.isoformat()}


def test_the_oldest_go_first_beyond_the_count_and_a_refresh_makes_a_case_recent():
    known: dict = {}
    for n in range(4):
        known = remember_case(known, f"case-{n}", TECH, NOW + timedelta(minutes=n), NOW,
                              max_age_days=30, max_cases=3)
    assert list(known) == ["case-1", "case-2", "case-3"]
    known = remember_case(known, "case-1", known["case-1"], NOW + timedelta(days=2), NOW,
                          max_age_days=30, max_cases=3)
    known = remember_case(known, "case-4", TECH, NOW + timedelta(days=2), NOW,
                          max_age_days=30, max_cases=3)
    assert list(known) == ["case-3", "case-1", "case-4"]


def test_entries_without_a_time_stay_until_the_count_evicts_them():
    known = {"legacy": dict(TECH)}
    known = remember_case(known, "case-new", TECH, NOW, NOW, max_age_days=30, max_cases=2)
    assert list(known) == ["legacy", "case-new"]
    known = remember_case(known, "case-newer", TECH, NOW, NOW, max_age_days=30, max_cases=2)
    assert list(known) == ["case-new", "case-newer"]


def test_a_followed_case_is_refreshed_at_most_daily():
    stored = {**TECH, REMEMBERED_AT: NOW.isoformat()}
    assert not needs_refresh(stored, NOW + timedelta(hours=20))
    assert needs_refresh(stored, NOW + timedelta(days=2))
    assert needs_refresh(dict(TECH), NOW)  # written before times were kept
