"""Process runners behind ``pipeline run``, ``pipeline worker`` and ``pipeline connector``.

The faust Worker owns the event loop and the signals: SIGINT/SIGTERM stop the connectors
first (no new input), then the agents, which commit what they processed after the
producer flushed; what was not committed is redelivered on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import faust
import mode

from connectors.hub import ConnectorHub, enabled_connectors
from pipeline.app import create_app
from pipeline.broker import EMBEDDED_WARNING, STATE_FILE, EmbeddedBroker, write_state
from pipeline.errors import ConfigError
from pipeline.kafka import ensure_topics
from pipeline.logs import faust_level, logging_config
from pipeline.settings import Settings

log = logging.getLogger(__name__)


class PipelineWorker(faust.Worker):
    """faust's worker, announcing readiness as one structured line (tests and ops wait on it)."""

    def __init__(self, *args: object, started: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._launched_at = started

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        log.info("event=worker_ready app_id=%s seconds_to_ready=%.2f", self.app.conf.id,
                 time.monotonic() - self._launched_at)


@contextmanager
def broker_for(settings: Settings) -> Iterator[Settings]:
    """Start the embedded broker when none is configured; yield settings that point at it."""
    if not settings.embedded_broker:
        yield settings
        return
    log.warning("event=embedded_broker %s", EMBEDDED_WARNING)
    worker = settings.worker
    if not worker.table_store.startswith("memory:"):
        # The embedded broker forgets every topic when it stops: tables kept on disk from
        # an earlier run would describe changelogs that no longer exist (stale idempotency
        # keys would drop new messages as retries). A fresh broker gets fresh tables.
        log.warning("event=table_store_ignored store=%s reason=embedded_broker_is_in_memory "
                    "using=memory://", worker.table_store)
        worker = worker.model_copy(update={"table_store": "memory://"})
    broker = EmbeddedBroker(log_path=None).start()
    write_state(broker)
    try:
        yield settings.model_copy(update={
            "kafka": settings.kafka.model_copy(update={"bootstrap": broker.bootstrap,
                                                       "embedded": True}),
            "worker": worker})
    finally:
        broker.stop()
        STATE_FILE.unlink(missing_ok=True)


def _loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def run_worker(settings: Settings, stages: list[str] | None, *, connectors: list[str] | None,
               started: float | None = None) -> None:
    """Run the faust worker with ``stages`` and, in the same loop, the given connectors."""
    started = time.monotonic() if started is None else started
    loop = _loop(settings.worker.event_loop)
    loop.run_until_complete(ensure_topics(settings.kafka))
    app, ctx = create_app(settings, stages)
    services: list[mode.Service] = []
    if settings.metrics.enabled:
        from pipeline.ops.prometheus import MetricsServer

        services.append(MetricsServer(settings.metrics, ctx.metrics, ctx.worker_name))
    if connectors:
        services.append(ConnectorHub(settings, connectors))
    worker = PipelineWorker(
        app, *services, loop=loop, started=started, loglevel=faust_level(settings.log.level),
        logging_config=logging_config(settings.log.level), quiet=True, redirect_stdouts=False,
    )
    worker.execute_from_commandline()


def run_connectors(settings: Settings, names: list[str]) -> None:
    """Run connectors alone (production: one process per connector)."""
    if not names:
        raise ConfigError("no connector to run: enable one (chat.enabled, twilio.enabled, "
                          "email.enabled, helpdesk.enabled) or name it")
    loop = _loop(settings.worker.event_loop)
    loop.run_until_complete(ensure_topics(settings.kafka))
    hub = ConnectorHub(settings, names)
    mode.Worker(hub, loop=loop, loglevel=faust_level(settings.log.level),
                logging_config=logging_config(settings.log.level), quiet=True,
                redirect_stdouts=False).execute_from_commandline()


def run_all(settings: Settings, stages: list[str] | None, with_connectors: bool) -> None:
    """``pipeline run``: broker if embedded, topics, every stage and the enabled connectors."""
    started = time.monotonic()
    with broker_for(settings) as effective:
        names = enabled_connectors(effective) if with_connectors else []
        log.info("event=starting bootstrap=%s embedded=%s connectors=%s",
                 effective.kafka.bootstrap, settings.embedded_broker, ",".join(names) or "none")
        try:
            run_worker(effective, stages, connectors=names, started=started)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
