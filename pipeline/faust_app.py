"""A faust App whose Kafka consumer does not sit on idle fetches, and whose tables say how
much of their changelog each recovery read.

faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. The embedded broker
answers a fetch only when that wait is over, even when records arrive meanwhile, so every
hop between stages cost ~0.6 s (measured: one ingest hop p50 0.57 s at 1500 ms, 0.054 s at
50 ms). A real Kafka broker answers as soon as data is there; the short wait costs it only
a few more empty fetches on idle partitions.

faust recovers a table by reading its changelog up to the end offsets ListOffsets reports.
The embedded broker reports the last *batch's base* offset + 1, so the records after it in
that batch were never read back: after a restart or a rebalance a table could miss the last
cases or idempotency keys written (3 of 4 in a restart test). With the offset-gap guard on
(the embedded broker), the ends are corrected by a fetch (``pipeline.kafka.true_ends``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT

from pipeline.delivery import DeliveryOrder
from pipeline.errors import ConfigError
from pipeline.kafka import gapguard, true_ends
from pipeline.runtime_settings import KafkaSettings

log = logging.getLogger("pipeline.tables")

# The faust version whose consumer internals this module relies on: the read-offset map
# (``Consumer._read_offset``, read by ``_drain_messages``), the committed offsets
# (``_committed_offset``), ``_filter_committable_offsets`` and ``Message.generation_id``.
# tests/unit/test_faust_internals.py fails when they move.
CHECKED_FAUST = "0.15.3"


def check_faust_version(version: str = faust.__version__) -> None:
    """Refuse to run on a faust whose internals were not checked: a moved read-offset map
    would bring back the batch lost after a seek (pipeline/delivery.py)."""
    if version != CHECKED_FAUST:
        raise ConfigError(
            f"pipeline/faust_app.py was written against faust-streaming {CHECKED_FAUST}, "
            f"found {version}: check faust/transport/consumer.py (_drain_messages, "
            f"_read_offset, _committed_offset, _filter_committable_offsets) and "
            f"tests/unit/test_faust_internals.py")


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher.
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", 1500)
        return consumer

    async def _highwaters(self, partitions: list[Any]) -> Mapping[Any, int]:
        listed = await super()._highwaters(partitions)
        kafka: KafkaSettings | None = getattr(self.app, "kafka_settings", None)
        if kafka is None or not gapguard.current_policy().enabled:
            return listed
        return await true_ends(kafka, listed)


class _ReadOffsets(dict[Any, Any]):
    """faust's per-partition read offsets, except for the hops' inputs.

    faust drops a fetched record whose offset is below the partition's read offset. A seek
    resets that offset, but records fetched before the seek and handed over after it set it
    forward again, and the records read a second time from the sought offset were then
    dropped for good (a whole batch lost after a rebalance). For the topics
    ``DeliveryOrder`` keeps in order, every record is handed to the hop, which passes over
    the ones it already processed.
    """

    def __init__(self, ordered: set[str]) -> None:
        super().__init__()
        self._ordered = ordered

    def __getitem__(self, tp: Any) -> Any:
        if tp.topic in self._ordered:
            return None
        return self.get(tp)


class _Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        order: DeliveryOrder | None = getattr(self.app, "delivery_order", None)
        if order is not None:
            self._read_offset = _ReadOffsets(order.topics)

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _filter_committable_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        # faust's offsets come from acknowledgements and from holes it counts as
        # acknowledged; never commit past a record the hop has not processed
        # (pipeline/delivery.py).
        offsets: dict[TP, int] = super()._filter_committable_offsets(tps)
        order: DeliveryOrder | None = getattr(self.app, "delivery_order", None)
        if order is None:
            return offsets
        capped = {tp: order.cap(tp, offset) for tp, offset in offsets.items()}
        return {tp: offset for tp, offset in capped.items() if self._should_commit(tp, offset)}


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class RecoveryCountingTable(faust.Table):  # type: ignore[misc]
    """A faust Table that logs, after each recovery, how many changelog records it read.

    What a persistent store (RocksDB) is for: a restarted worker reads only the changelog
    written since its local state was saved, not the whole of it (the memory store always
    reads everything). faust logs its recovery offsets at info level, below the level its
    loggers are kept at, so this line is the operator's (and the tests') observable.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recovered_records = 0

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        events = list(batch)
        self.recovered_records += len(events)
        super().apply_changelog_batch(events)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        mine = sorted(tp.partition for tp in active_tps if tp.topic == self.changelog_topic.get_topic_name())
        log.info("event=table_recovered table=%s store=%s partitions=%s changelog_records_read=%d",
                 self.name, self.app.conf.store, ",".join(map(str, mine)) or "-",
                 self.recovered_records)
        self.recovered_records = 0


class PipelineApp(faust.App):
    """faust.App with a configurable consumer fetch wait and recovery-counting tables."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 100,
                 kafka_settings: KafkaSettings | None = None, **kwargs: Any) -> None:
        check_faust_version()
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.kafka_settings = kafka_settings
        self.delivery_order = DeliveryOrder()
        kwargs.setdefault("Table", RecoveryCountingTable)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)


def flush_completely(buffer: Any) -> None:
    """Make faust's producer buffer flush, before an offset commit, every record queued so far.

    faust commits consumed offsets after ``Producer.flush()``, which drains its send buffer
    with ``flush_atmost(None)``: that returns as soon as no record was handed to the client
    for 0.1 s, records still waiting. On a busy machine (a loaded CPU, a slow metadata
    lookup) the offsets of their inputs were then committed before the outputs existed, and
    a crash at that moment lost them. This flush waits until every record queued before it
    was acknowledged by the broker (or failed); records queued meanwhile are the next
    commit's, so a steady stream cannot starve the commit.
    """
    unsent: set[asyncio.Future[Any]] = set()
    queue_record = buffer.put

    def put(fut: asyncio.Future[Any]) -> None:
        unsent.add(fut)
        fut.add_done_callback(unsent.discard)
        queue_record(fut)

    async def flush() -> None:
        if unsent:
            await asyncio.wait(list(unsent))

    buffer.put = put
    buffer.flush = flush
