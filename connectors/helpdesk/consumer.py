"""The helpdesk's Kafka consumer: one group over the ``queue.*`` topics, manual commits.

Kept narrow on purpose (records in, ``confirm`` + ``commit_confirmed``, ``pause`` /
``resume``) so that it can be swapped for the shared client edge. It guards against the
embedded broker's defect (docs: architecture, "known defect"): a record whose offset is
above the next expected one for its partition means the broker handed out N+1 before N
was stored; the consumer seeks back to N and tries again for ``gap_wait_seconds`` before
accepting the gap (then logs it: a retention deletion looks the same).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError

from pipeline.errors import BrokerError
from pipeline.kafka import client_options
from pipeline.settings import KafkaSettings, WorkerSettings
from pipeline.topics import QUEUE_TOPIC_PREFIX, TopicNames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueRecord:
    topic: str  # logical name (queue.<name>)
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: QueueConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner.commit_confirmed()
        for tp in revoked:
            self.owner.forget(tp)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("event=helpdesk_partitions_assigned count=%d", len(assigned))


class QueueConsumer:
    """Every ``queue.<name>`` topic (present and future), and the ``also`` topics, in
    consumer group ``group_id``."""

    def __init__(self, kafka: KafkaSettings, worker: WorkerSettings, group_id: str, *,
                 also: list[str] | None = None, gap_wait_seconds: float = 5.0,
                 max_records: int = 200) -> None:
        self.names = TopicNames(kafka.topic_prefix)
        self.group_id = group_id
        self._also = list(also or [])
        self.gap_wait_seconds = gap_wait_seconds
        self._max_records = max_records
        # aiokafka binds its client to the running loop: made in start(), not here.
        self._options = dict(
            **client_options(kafka), group_id=group_id, enable_auto_commit=False,
            auto_offset_reset="earliest",
            # New queues (a rules edit) are found within seconds, not the default 5 min.
            metadata_max_age_ms=5000,
            session_timeout_ms=int(worker.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(worker.heartbeat_interval_seconds * 1000),
            rebalance_timeout_ms=int(worker.rebalance_timeout_seconds * 1000),
            fetch_max_wait_ms=worker.fetch_max_wait_ms)
        self._client: AIOKafkaConsumer | None = None
        self._expected: dict[TopicPartition, int] = {}
        self._gap_since: dict[TopicPartition, float] = {}
        self._confirmed: dict[TopicPartition, int] = {}

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        if self._client is None:
            raise BrokerError("helpdesk consumer not started")
        return self._client

    async def start(self) -> None:
        self._client = AIOKafkaConsumer(**self._options)
        wanted = [re.escape(self.names(QUEUE_TOPIC_PREFIX)) + ".+",
                  *(re.escape(self.names(t)) for t in self._also)]
        pattern = "^(" + "|".join(wanted) + ")$"
        self._consumer.subscribe(pattern=pattern, listener=_Listener(self))
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise BrokerError(f"helpdesk consumer cannot start: {exc!r}") from exc

    async def stop(self) -> None:
        if self._client is None:
            return
        await self.commit_confirmed()
        await self._client.stop()
        self._client = None

    def forget(self, tp: TopicPartition) -> None:
        self._expected.pop(tp, None)
        self._gap_since.pop(tp, None)

    async def _next_expected(self, tp: TopicPartition) -> int:
        if tp not in self._expected:
            committed = await self._consumer.committed(tp)
            if committed is None:
                committed = (await self._consumer.beginning_offsets([tp]))[tp]
            self._expected[tp] = committed
        return self._expected[tp]

    async def records(self) -> AsyncIterator[QueueRecord]:
        """Records in offset order per partition, without holes the broker made."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=self._max_records)
            except ConsumerStoppedError:
                return
            except KafkaError as exc:
                log.warning("event=helpdesk_fetch_failed error=%r", exc)
                await asyncio.sleep(1.0)
                continue
            seeked = False
            for tp, items in batch.items():
                expected = await self._next_expected(tp)
                for r in items:
                    if r.offset < expected:
                        continue  # already handed out before a seek back
                    if r.offset > expected:
                        since = self._gap_since.setdefault(tp, loop.time())
                        if loop.time() - since < self.gap_wait_seconds:
                            self._consumer.seek(tp, expected)
                            seeked = True
                            break
                        log.warning("event=helpdesk_offset_gap_accepted topic=%s partition=%d "
                                    "missing=%d-%d", tp.topic, tp.partition, expected,
                                    r.offset - 1)
                    self._gap_since.pop(tp, None)
                    expected = self._expected[tp] = r.offset + 1
                    yield QueueRecord(self.names.logical(r.topic), r.partition, r.offset,
                                      r.key, r.value)
            if seeked:
                await asyncio.sleep(0.1)  # give the broker time to store the missing record

    def confirm(self, record: QueueRecord) -> None:
        """The helpdesk has this record: its offset may be committed."""
        tp = TopicPartition(self.names(record.topic), record.partition)
        self._confirmed[tp] = max(self._confirmed.get(tp, 0), record.offset + 1)

    async def commit_confirmed(self) -> None:
        if not self._confirmed:
            return
        offsets, self._confirmed = self._confirmed, {}
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # Not fatal: these records are delivered again and found in the helpdesk.
            log.warning("event=helpdesk_commit_failed error=%r", exc)

    def pause(self) -> None:
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        self._consumer.resume(*self._consumer.paused())
