"""Business-hours arithmetic: due times counted only while a queue's team is at work."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|d|min)\s*$")


class BusinessCalendar(BaseModel):
    """Opening hours of a team, e.g. Monday–Friday 8:00–17:00 Europe/Paris, minus holidays."""

    timezone: str = "Europe/Paris"
    days: list[str] = Field(default_factory=lambda: list(DAYS[:5]))
    opens: time = time(8, 0)
    closes: time = time(17, 0)
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("days")
    @classmethod
    def _day_names(cls, value: list[str]) -> list[str]:
        bad = [d for d in value if d.lower()[:3] not in DAYS]
        if bad:
            raise ValueError(f"unknown day(s) {bad}; use {', '.join(DAYS)}")
        if not value:
            raise ValueError("at least one working day is needed")
        return [d.lower()[:3] for d in value]

    def model_post_init(self, __context: object) -> None:
        if self.closes <= self.opens:
            raise ValueError("closes must be after opens")

    @property
    def hours_per_day(self) -> float:
        span = datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)
        return span.total_seconds() / 3600

    def is_working_day(self, day: date) -> bool:
        return DAYS[day.weekday()] in self.days and day not in self.holidays

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone))
        return self.is_working_day(local.date()) and self.opens <= local.time() < self.closes

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` of working time after ``start`` (which may be off hours)."""
        zone = ZoneInfo(self.timezone)
        current = start.astimezone(zone)
        remaining = timedelta(hours=hours)
        for _ in range(3 * 366):  # bounded: a calendar always has working days
            day = current.date()
            if self.is_working_day(day):
                opens = datetime.combine(day, self.opens, zone)
                closes = datetime.combine(day, self.closes, zone)
                if current < opens:
                    current = opens
                if current < closes:
                    available = closes - current
                    if remaining <= available:
                        return current + remaining
                    remaining -= available
            current = datetime.combine(day + timedelta(days=1), time(0), zone)
        raise ValueError("no working time found within three years (holidays cover all days?)")


def parse_duration_hours(value: str | float | int, hours_per_day: float) -> float:
    """``"6h"`` → 6, ``"3d"`` → 3 working days of the calendar, ``"30min"`` → 0.5."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration like 30min, 6h or 3d")
    amount, unit = float(match.group(1)), match.group(2)
    return {"h": amount, "d": amount * hours_per_day, "min": amount / 60}[unit]
