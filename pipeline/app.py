"""The faust runtime: the app, built by a factory from the settings, and the hops on it.

``create_app`` builds the chosen hops' steps (``pipeline/stages.py``), chains them
(``pipeline/chain.py``), runs one faust agent per hop on one app (one consumer group), and
a timer that publishes each stage's counters on ``pipeline.metrics``. ``FaustContext`` is
the stage contract (``pipeline/stage.py``) on faust: tables, tasks, timers, sends.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import weakref
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import timedelta
from typing import Any

import faust
import faust.streams as faust_streams
from faust.types import EventT, StreamT

from pipeline.blobstore import BlobStore
from pipeline.chain import Abandoned, Chain, build_chains
from pipeline.delivery import DeliveryOrder, Verdict
from pipeline.faust_app import PipelineApp, flush_completely
from pipeline.kafka import ensure_topics, gapguard, metadataguard
from pipeline.runtime_settings import RuntimeSettings
from pipeline.stage import (
    Clock,
    Output,
    RecordHandler,
    RecordMeta,
    StageContext,
    encode,
    utcnow,
)
from pipeline.stages import HopSpec, describe_hops, installed_hops, resolve_hops
from pipeline.topics import Topic, TopicSpec

log = logging.getLogger(__name__)

PRODUCER_BUFFER_MESSAGES = 5000


def app_id(settings: RuntimeSettings, hops: list[HopSpec], all_hops: list[HopSpec]) -> str:
    """The consumer group: workers running the same hops share it and split partitions.

    A worker running a subset (e.g. ``--stages transcribe`` on GPU machines) gets its own
    group, so it never steals the partitions of hops it does not run.
    """
    base = settings.worker.app_id
    if not hops or [h.name for h in hops] == [h.name for h in all_hops]:
        return base
    return f"{base}-{'-'.join(h.name for h in hops)}"


def faust_options(settings: RuntimeSettings) -> dict[str, Any]:
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


def make_current(event: EventT) -> None:
    """Make ``event`` the one tables write their changelog for, in this task only.

    A table writes its changelog to the partition of faust's current event, and
    ``take_events()`` leaves that at the batch's last event. Only the context variable is set
    here: ``Stream._set_current_event`` also sets the stream's shared ``current_event``
    attribute, which the stream's buffering task reads after it resumes, so a handler that
    awaits made it buffer an event of the previous batch a second time in place of a new one
    (8 to 16 of 4,000 messages lost in bench/pipeline_throughput.py).
    """
    faust_streams._current_event.set(weakref.ref(event))


def _meta(topic: str, event: EventT) -> RecordMeta:
    message = event.message
    headers: Any = message.headers or ()
    pairs = headers.items() if isinstance(headers, dict) else headers
    return RecordMeta(topic, message.partition, message.offset, message.key,
                      message.timestamp,
                      tuple((str(k), v if isinstance(v, bytes) else str(v or "").encode())
                            for k, v in pairs))


class FaustContext(StageContext):
    """The stage contract on a faust app: tables are faust Tables, sends faust's producer."""

    def __init__(self, app: faust.App, settings: RuntimeSettings, blobs: BlobStore,
                 *, worker_name: str = "worker", clock: Clock = utcnow) -> None:
        super().__init__(settings, blobs, worker_name=worker_name, clock=clock)
        self.app = app
        self._topics: dict[str, faust.TopicT] = {}

    def topic(self, logical: Topic | str, **options: Any) -> faust.TopicT:
        """The faust topic for a logical name, bytes in and out."""
        name = self.names(logical)
        if name not in self._topics:
            self._topics[name] = self.app.topic(
                name, key_serializer="raw", value_serializer="raw", **options)
        return self._topics[name]

    def table(self, name: str) -> MutableMapping[str, Any]:
        table: MutableMapping[str, Any] = self.app.Table(
            name, default=None, partitions=self.settings.kafka.partitions)
        return table

    def task(self, fn: Callable[[], Awaitable[None]]) -> None:
        self.app.task(fn)

    def timer(self, seconds: float, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        self.app.timer(seconds, name=name)(fn)

    def service(self, service: Any) -> None:
        self.app.service(service)

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        await ensure_topics(self.settings.kafka, extra=list(specs))

    def send_soon(self, output: Output) -> None:
        self.write([output])

    def write(self, outputs: list[Output]) -> None:
        """Queue ``outputs``, each value encoded once (route writes one to two topics)."""
        encoded: dict[int, bytes | None] = {}
        for output in outputs:
            if id(output.value) not in encoded:
                encoded[id(output.value)] = encode(output.value)
            key = output.key.encode() if output.key is not None else None
            self.topic(output.topic).send_soon(key=key, value=encoded[id(output.value)])

    def consume(self, topic: Topic | str, name: str, handle: RecordHandler, *,
                internal_partitions: int | None = None) -> None:
        source = (self.topic(topic, internal=True, partitions=internal_partitions)
                  if internal_partitions else self.topic(topic))

        async def agent(stream: StreamT) -> None:
            async for event in stream.events():
                make_current(event)
                meta = _meta(str(topic), event)
                try:
                    outputs = list(await handle(event.value, meta))
                except Exception as exc:  # poison: a dead letter, never a crashed worker
                    log.warning("event=dead_letter consumer=%s topic=%s partition=%s "
                                "offset=%s error=%r", name, topic, meta.partition,
                                meta.offset, exc)
                    outputs = [self.dead_letter(name, exc, meta, event.value)]
                self.write(outputs)

        self.app.agent(source, name=name)(agent)

    def stopping(self) -> bool:
        # faust suspends its flow control when it stops and when partitions are revoked,
        # then waits for the records being processed.
        return not self.app.flow_control.is_active()

    def hop(self, chain: Chain) -> None:
        """One agent for the hop: each record of its input through all its steps, each
        partition's records in order and none skipped (``pipeline/delivery.py``)."""
        conf = self.settings.worker
        source = chain.hop.source
        parallel = chain.parallel
        resumed: set[int] = set()
        self.app.delivery_order.topics.add(self.names(source))  # type: ignore[attr-defined]

        async def one(event: EventT) -> None:
            make_current(event)
            self.write(await chain.run(event.value, _meta(source, event)))

        async def admitted(events: list[EventT]) -> list[EventT]:
            kept = []
            for event in events:
                if event.message.partition not in resumed:
                    resumed.add(event.message.partition)
                    log.info("event=partition_started hop=%s topic=%s partition=%s offset=%s",
                             chain.hop.name, source, event.message.partition,
                             event.message.offset)
                if await self.admit(event):
                    kept.append(event)
                else:
                    leave_unacknowledged([event])
            return kept

        async def agent(stream: StreamT) -> None:
            batches = stream.take_events(  # type: ignore[attr-defined]
                parallel if parallel > 1 else conf.batch_size,
                within=conf.batch_within_seconds)
            async for batch in batches:
                events = await admitted(batch)
                if parallel > 1:  # each result is queued when ready; acked after the batch
                    results = await asyncio.gather(*(one(event) for event in events),
                                                   return_exceptions=True)
                    failed = [e for e, r in zip(events, results, strict=True)
                              if isinstance(r, BaseException)]
                    self.unprocessed(failed)
                    for result in results:
                        if isinstance(result, BaseException) and not isinstance(result, Abandoned):
                            raise result
                    continue
                for index, event in enumerate(events):
                    try:
                        await one(event)
                    except Abandoned:
                        self.unprocessed(events[index:])
                        break
                    except BaseException:  # a cancel: the rest of the batch was not done
                        self.unprocessed(events[index:])
                        raise

        self.app.agent(self.topic(source), name=chain.hop.name)(agent)

    async def admit(self, event: EventT) -> bool:
        """Whether to process ``event`` now; if a record before it was never delivered, the
        partition is sought back to that record and ``event`` waits for its turn."""
        message, consumer = event.message, self.app.consumer
        order: DeliveryOrder = self.app.delivery_order  # type: ignore[attr-defined]
        verdict = order.admit(
            message.tp, message.offset, generation=message.generation_id,
            current_generation=self.app.consumer_generation_id,
            committed=getattr(consumer, "_committed_offset", {}).get(message.tp))
        if verdict is Verdict.SEEK:
            missing = order.next_offset(message.tp)
            if missing is not None:
                await consumer.seek(message.tp, missing)
        return verdict is Verdict.PROCESS

    def unprocessed(self, events: list[EventT]) -> None:
        """These admitted records were not processed: read again, and nothing after them
        in their partition is processed or committed before they are."""
        order: DeliveryOrder = self.app.delivery_order  # type: ignore[attr-defined]
        for event in events:
            order.failed(event.message.tp, event.message.offset)
        leave_unacknowledged(events)


def leave_unacknowledged(events: list[EventT]) -> None:
    """Keep these records out of the next offset commit: they were not processed.

    faust acknowledges every event of a ``take_events`` batch when the loop over it is left,
    whatever the reason (a cancel on stop, an exception), and then commits their offsets: a
    record still waiting out an outage, or not reached yet, would be lost. A message marked
    acknowledged beforehand is never acknowledged to the consumer (``Message.ack`` returns
    at once), so its offset is not committed, and faust's wait for records in flight (on a
    stop or a rebalance) does not wait for it: the partition's next owner reads it again.
    """
    for event in events:
        event.message.acked = True


def create_app(settings: RuntimeSettings, stages: list[str] | None = None,
               *, clock: Clock = utcnow) -> tuple[faust.App, FaustContext]:
    """A faust app running the hops ``stages`` choose (all installed ones by default)."""
    hops = resolve_hops(stages)
    # faust makes its own aiokafka clients (not through client_options): the guards are
    # put in place here for them.
    metadataguard.install()
    gapguard.configure(settings.kafka.gap_guard_enabled, settings.kafka.gap_patience_seconds)
    app = PipelineApp(app_id(settings, hops, installed_hops()),
                      fetch_max_wait_ms=settings.worker.fetch_max_wait_ms,
                      kafka_settings=settings.kafka, **faust_options(settings))
    ctx = FaustContext(app, settings, BlobStore(settings.blobs.url),
                       worker_name=f"{socket.gethostname()}", clock=clock)
    for chain in build_chains(ctx, hops):
        ctx.hop(chain)
    _publish_metrics(ctx)
    # faust pauses every stream whenever more than 100 records wait in the producer buffer
    # (table changelogs, send_soon); with one changelog write per message that pause came
    # every 100 messages. A larger buffer keeps the stream flowing; commits still flush it.
    app.producer.buffer.max_messages = PRODUCER_BUFFER_MESSAGES
    flush_completely(app.producer.buffer)
    log.info("event=app_created app_id=%s hops=%s taps=%s", app.conf.id,
             describe_hops(hops), ",".join(settings.worker.taps) or "none")
    return app, ctx


def _publish_metrics(ctx: FaustContext) -> None:
    interval = timedelta(seconds=ctx.settings.worker.metrics_interval_seconds)

    @ctx.app.timer(interval.total_seconds(), name="publish-metrics")
    async def publish() -> None:
        now = ctx.now()
        for stage, metrics in ctx.metrics.items():
            ctx.send_soon(Output(Topic.METRICS, stage, metrics.snapshot(ctx.worker_name, now)))
