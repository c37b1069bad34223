"""The worker's ``/metrics`` endpoint: Prometheus reads the same StageMetrics objects that
are published on ``pipeline.metrics`` (one bookkeeping, two views).

Metric families (labels in braces):

- ``pipeline_stage_events_total{stage, counter}``: every counter of a stage, as counted
  (``in``, ``out.<topic>``, ``deadletter``, ``quarantined.<reason>``, ...).
- ``pipeline_stage_latency_seconds{stage, quantile}``: p50/p90/p99/max processing latency
  of the last 2,048 messages (``quantile`` is 0.5, 0.9, 0.99, 1).
- ``pipeline_stage_last_error_timestamp_seconds{stage}``: when the stage last dead-lettered.
- ``pipeline_stage_started_timestamp_seconds{stage}``: counters are cumulative since then.
- ``pipeline_stage_info{stage, key, value}`` = 1: what the stage put in
  ``StageMetrics.info`` (rules version, last reload result...).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

import mode
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.metrics import StageMetrics
from pipeline.ops.config import MetricsConfig

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_QUANTILES = {"p50": "0.5", "p90": "0.9", "p99": "0.99", "max": "1"}


class StageCollector(Collector):
    """Reads the live ``StageMetrics`` of a worker at scrape time (no copy kept)."""

    def __init__(self, stages: Mapping[str, StageMetrics], worker: str) -> None:
        self._stages = stages
        self._worker = worker

    def collect(self) -> Iterable[Metric]:
        events = CounterMetricFamily(
            "pipeline_stage_events", "Messages a stage counted, by counter name",
            labels=["stage", "counter"])
        latency = GaugeMetricFamily(
            "pipeline_stage_latency_seconds",
            "Processing latency of a stage's recent messages", labels=["stage", "quantile"])
        last_error = GaugeMetricFamily(
            "pipeline_stage_last_error_timestamp_seconds",
            "When the stage last failed on a message (dead-lettered)", labels=["stage"])
        started = GaugeMetricFamily(
            "pipeline_stage_started_timestamp_seconds",
            "Since when the stage's counters are cumulative", labels=["stage"])
        info = GaugeMetricFamily(
            "pipeline_stage_info", "What a stage reports about itself (value in a label)",
            labels=["stage", "key", "value"])
        # The worker's loop mutates the metrics; a snapshot is a consistent copy of one stage.
        for stage, metrics in list(self._stages.items()):
            snap = metrics.snapshot(self._worker, metrics.started_at)
            for counter, value in sorted(snap.counters.items()):
                events.add_metric([stage, counter], value)
            for name, ms in snap.latency_ms.items():
                latency.add_metric([stage, _QUANTILES.get(name, name)], ms / 1000)
            if snap.last_error_at is not None:
                last_error.add_metric([stage], _epoch(snap.last_error_at))
            started.add_metric([stage], _epoch(snap.started_at))
            for key, value in sorted(snap.info.items()):
                info.add_metric([stage, key, str(value)[:200]], 1)
        yield from (events, latency, last_error, started, info)


def _epoch(at: datetime) -> float:
    return at.timestamp()


def registry_for(stages: Mapping[str, StageMetrics], worker: str) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StageCollector(stages, worker))
    return registry


class MetricsServer(mode.Service):
    """A small aiohttp server in the worker's own loop serving ``GET /metrics``.

    In the loop rather than prometheus_client's thread server: the collector then reads the
    counters between two messages, never while a stage is updating them.
    """

    def __init__(self, config: MetricsConfig, stages: Mapping[str, StageMetrics],
                 worker: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.config = config
        self.registry = registry_for(stages, worker)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE})

    async def on_start(self) -> None:
        app = web.Application()
        app.router.add_get(self.config.path, self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr,attr-defined]
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port
        log.info("event=metrics_endpoint url=http://%s:%s%s", self.config.host, self.port,
                 self.config.path)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
