"""``pipeline stats --since 7d``: cases by category, module/topic, country and channel.

Computed from ``cases.routed`` records written in the period (Kafka record time). A case
routed more than once (re-routed after a merge, reassigned) counts once, with its last
routing. Fields are read leniently from the JSON, so records from before a field existed
(or from a route stage that does not fill it) count under ``unknown``.

Where each dimension comes from, first present wins:
- category: ``routing.category``
- module/topic: ``routing.module``, ``routing.topic``, ``headers["x-help-topic"]``,
  ``headers["x-module"]``, then the queue (``routing.queue``)
- country: ``identity.country``
- channel: ``channel``
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pipeline.errors import ConfigError

UNKNOWN = "unknown"
DIMENSIONS = ("category", "module", "country", "channel")
_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_period(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` → a timedelta."""
    match = _PERIOD.match(text)
    if not match:
        raise ConfigError(f"--since {text!r}: expected a number and a unit s, m, h, d or w "
                          "(e.g. 7d)")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value not in (None, "") else None


def case_dimensions(routed: dict[str, Any]) -> dict[str, str]:
    """The four dimensions of one routed case, ``unknown`` where a field is missing."""
    routing = _get(routed, "routing") or {}
    module = next((v for v in (
        _get(routing, "module"), _get(routing, "topic"),
        _get(routed, "headers", "x-help-topic"), _get(routed, "headers", "x-module"),
        _get(routing, "queue")) if _text(v)), None)
    country = _text(_get(routed, "identity", "country"))
    return {
        "category": _text(_get(routing, "category")) or UNKNOWN,
        "module": _text(module) or UNKNOWN,
        "country": country.upper() if country else UNKNOWN,
        "channel": _text(_get(routed, "channel")) or UNKNOWN,
    }


def case_key(routed: dict[str, Any]) -> str | None:
    return _text(_get(routed, "case", "case_id")) or _text(routed.get("id"))


@dataclass
class CaseStats:
    since: datetime
    until: datetime
    cases: int = 0
    skipped: int = 0
    by: dict[str, Counter[str]] = field(
        default_factory=lambda: {d: Counter() for d in DIMENSIONS})


def case_stats(values: Iterable[bytes | None], since: datetime, until: datetime) -> CaseStats:
    """Count cases by dimension; unreadable records are counted in ``skipped``."""
    latest: dict[str, dict[str, str]] = {}
    stats = CaseStats(since, until)
    for value in values:
        try:
            routed = json.loads(value or b"")
        except ValueError:
            stats.skipped += 1
            continue
        key = case_key(routed) if isinstance(routed, dict) else None
        if key is None:
            stats.skipped += 1
            continue
        latest[key] = case_dimensions(routed)  # a later routing of the same case wins
    stats.cases = len(latest)
    for dims in latest.values():
        for dim, label in dims.items():
            stats.by[dim][label] += 1
    return stats


def render(stats: CaseStats) -> str:
    out = [f"cases routed {stats.since:%Y-%m-%d %H:%M} → {stats.until:%Y-%m-%d %H:%M} UTC: "
           f"{stats.cases}"]
    if stats.skipped:
        out.append(f"({stats.skipped} unreadable record(s) skipped)")
    for dim in DIMENSIONS:
        out += ["", f"BY {dim.upper()}"]
        counts = stats.by[dim]
        if not counts:
            out.append("  (none)")
        for value, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            share = 100 * n / stats.cases if stats.cases else 0
            out.append(f"  {value:<30} {n:>7}  {share:5.1f}%")
    return "\n".join(out)


def as_json(stats: CaseStats) -> str:
    return json.dumps({"since": stats.since.isoformat(), "until": stats.until.isoformat(),
                       "cases": stats.cases, "skipped": stats.skipped,
                       "by": {d: dict(c.most_common()) for d, c in stats.by.items()}},
                      ensure_ascii=False)
