"""The faust app, built by a factory from the settings (no module-level global app).

``create_app`` wires the chosen stages onto one app (one consumer group) and a timer that
publishes each stage's counters on ``pipeline.metrics``.
"""

from __future__ import annotations

import logging
import socket
from datetime import timedelta
from typing import Any

import faust

from pipeline.blobstore import BlobStore
from pipeline.faust_app import PipelineApp, flush_completely
from pipeline.kafka import gapguard, metadataguard
from pipeline.settings import Settings
from pipeline.stage import Clock, Output, StageContext, utcnow
from pipeline.stages import load_stage, resolve_stages
from pipeline.topics import Topic

log = logging.getLogger(__name__)

PRODUCER_BUFFER_MESSAGES = 5000


def app_id(settings: Settings, stages: list[str], all_stages: list[str]) -> str:
    """The consumer group: workers running the same stages share it and split partitions.

    A worker running a subset (e.g. ``--stages transcribe`` on GPU machines) gets its own
    group, so it never steals the partitions of stages it does not run.
    """
    base = settings.worker.app_id
    if not stages or stages == all_stages:
        return base
    return f"{base}-{'-'.join(stages)}"


def faust_options(settings: Settings) -> dict[str, Any]:
    w, k = settings.worker, settings.kafka
    options: dict[str, Any] = {
        "broker": f"kafka://{k.bootstrap}",
        "store": w.table_store,
        "datadir": w.data_dir,
        "topic_partitions": k.partitions,
        "topic_replication_factor": k.replication_factor,
        "broker_session_timeout": w.session_timeout_seconds,
        "broker_rebalance_timeout": w.rebalance_timeout_seconds,
        "broker_heartbeat_interval": w.heartbeat_interval_seconds,
        "broker_request_timeout": max(w.request_timeout_seconds, w.session_timeout_seconds),
        "consumer_auto_offset_reset": "earliest",
        "broker_commit_interval": w.commit_interval_seconds,
        "producer_linger": w.producer_linger_ms / 1000,
        "producer_max_batch_size": w.producer_max_batch_bytes,
        "producer_acks": -1,
        "stream_buffer_maxsize": 16384,
        "table_standby_replicas": 0 if settings.embedded_broker else 1,
        "web_enabled": False,
        "autodiscover": False,
        "topic_disable_leader": True,
        # The check compares offsets persisted in RocksDB with the changelog's end. With the
        # memory store nothing is persisted: it compares the offset of a changelog record the
        # worker just read (standby reading still in flight when a partition becomes active,
        # e.g. written by a stopping worker) with an end offset fetched a moment earlier, and
        # on that false alarm faust crashes the whole worker (seen in the rebalance test).
        # See WorkerSettings.recovery_consistency_check for the embedded broker.
        "recovery_consistency_check": (w.recovery_consistency_check
                                       and not w.table_store.startswith("memory:")),
    }
    if k.sasl_mechanism:
        options["broker_credentials"] = faust.SASLCredentials(
            username=k.sasl_username or "",
            password=k.sasl_password.get_secret_value() if k.sasl_password else "",
            mechanism=k.sasl_mechanism,
            ssl_context=None,
        )
    return options


def create_app(settings: Settings, stages: list[str] | None = None,
               *, clock: Clock = utcnow) -> tuple[faust.App, StageContext]:
    """A faust app running ``stages`` (all installed ones by default)."""
    chosen = resolve_stages(stages)
    # faust makes its own aiokafka clients (not through client_options): the guards are
    # put in place here for them.
    metadataguard.install()
    gapguard.configure(settings.kafka.gap_guard_enabled, settings.kafka.gap_patience_seconds)
    app = PipelineApp(app_id(settings, chosen, resolve_stages(None)),
                      fetch_max_wait_ms=settings.worker.fetch_max_wait_ms,
                      kafka_settings=settings.kafka, **faust_options(settings))
    ctx = StageContext(app, settings, BlobStore(settings.blobs.url),
                       worker_name=f"{socket.gethostname()}", clock=clock)
    for name in chosen:
        load_stage(name).register(ctx)
    _publish_metrics(ctx)
    # faust pauses every stream whenever more than 100 records wait in the producer buffer
    # (table changelogs, send_soon); with one changelog write per message that pause came
    # every 100 messages. A larger buffer keeps the stream flowing; commits still flush it.
    app.producer.buffer.max_messages = PRODUCER_BUFFER_MESSAGES
    flush_completely(app.producer.buffer)
    log.info("event=app_created app_id=%s stages=%s", app.conf.id, ",".join(chosen))
    return app, ctx


def _publish_metrics(ctx: StageContext) -> None:
    interval = timedelta(seconds=ctx.settings.worker.metrics_interval_seconds)

    @ctx.app.timer(interval.total_seconds(), name="publish-metrics")
    async def publish() -> None:
        now = ctx.now()
        for stage, metrics in ctx.metrics.items():
            ctx.send_soon(Output(Topic.METRICS, stage, metrics.snapshot(ctx.worker_name, now)))
