"""Per-stage counters and latencies, published periodically on ``pipeline.metrics``.

Counters are cumulative since the worker started (like Prometheus counters), so a reader
computes rates from two snapshots and a restart shows as a reset.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

_LATENCY_WINDOW = 2048


class StageSnapshot(BaseModel):
    """What one stage did so far, as published on ``pipeline.metrics`` (key: stage)."""

    stage: str
    worker: str
    at: datetime
    started_at: datetime
    counters: dict[str, int] = Field(default_factory=dict)
    latency_ms: dict[str, float] = Field(default_factory=dict)
    last_error: str | None = None
    last_error_at: datetime | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class StageMetrics:
    """Counters of one stage: ``in``, ``out.<topic>``, ``deadletter``, reasons..."""

    def __init__(self, stage: str, started_at: datetime) -> None:
        self.stage = stage
        self.started_at = started_at
        self.counters: Counter[str] = Counter()
        self._latencies: list[float] = []
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.info: dict[str, Any] = {}

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def observe_latency(self, seconds: float) -> None:
        self._latencies.append(seconds)
        if len(self._latencies) > _LATENCY_WINDOW:
            del self._latencies[: len(self._latencies) - _LATENCY_WINDOW]

    def error(self, description: str, at: datetime) -> None:
        self.last_error, self.last_error_at = description, at

    def snapshot(self, worker: str, at: datetime) -> StageSnapshot:
        return StageSnapshot(
            stage=self.stage,
            worker=worker,
            at=at,
            started_at=self.started_at,
            counters=dict(self.counters),
            latency_ms=percentiles_ms(self._latencies),
            last_error=self.last_error,
            last_error_at=self.last_error_at,
            info=dict(self.info),
        )


def percentiles_ms(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max of the recent processing latencies, in milliseconds."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": pick(1.0)}
