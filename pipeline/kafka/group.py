"""A consumer group over topics matched by name (present and future ones), with commits
only of what the caller confirmed.

Records come in offset order per partition; the embedded broker's skipped offsets are held
back by the process-wide offset-gap guard (``gapguard``), which every client made from
``client_options`` has. Used by the helpdesk connector (every ``queue.*`` topic, and
``cases.events``); ``commit_confirmed`` commits only offsets whose records the caller
confirmed, so nothing is committed before the helpdesk has it.
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
from pipeline.kafka.client import client_options
from pipeline.runtime_settings import KafkaSettings, WorkerSettings
from pipeline.topics import TopicNames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupRecord:
    topic: str  # logical name (queue.<name>)
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: GroupConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner.commit_confirmed()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("event=group_partitions_assigned group=%s count=%d", self.owner.group_id,
                 len(assigned))


class GroupConsumer:
    """Every topic whose logical name starts with one of ``prefixes`` (present and future),
    and the ``topics``, in consumer group ``group_id``."""

    def __init__(self, kafka: KafkaSettings, worker: WorkerSettings, group_id: str, *,
                 prefixes: list[str], topics: list[str] | None = None,
                 max_records: int = 200) -> None:
        self.names = TopicNames(kafka.topic_prefix)
        self.group_id = group_id
        self._prefixes = list(prefixes)
        self._topics = list(topics or [])
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
        self._confirmed: dict[TopicPartition, int] = {}

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        if self._client is None:
            raise BrokerError(f"consumer group {self.group_id}: not started")
        return self._client

    async def start(self) -> None:
        self._client = AIOKafkaConsumer(**self._options)
        wanted = [*(re.escape(self.names(p)) + ".+" for p in self._prefixes),
                  *(re.escape(self.names(t)) for t in self._topics)]
        pattern = "^(" + "|".join(wanted) + ")$"
        self._consumer.subscribe(pattern=pattern, listener=_Listener(self))
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise BrokerError(f"consumer group {self.group_id} cannot start: {exc!r}") from exc

    async def stop(self) -> None:
        if self._client is None:
            return
        await self.commit_confirmed()
        await self._client.stop()
        self._client = None

    async def records(self) -> AsyncIterator[GroupRecord]:
        """Records in offset order per partition, until the consumer is stopped."""
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=self._max_records)
            except ConsumerStoppedError:
                return
            except KafkaError as exc:
                log.warning("event=group_fetch_failed group=%s error=%r", self.group_id, exc)
                await asyncio.sleep(1.0)
                continue
            for items in batch.values():
                for r in items:
                    yield GroupRecord(self.names.logical(r.topic), r.partition, r.offset,
                                      r.key, r.value)

    def confirm(self, record: GroupRecord) -> None:
        """The caller is done with this record: its offset may be committed."""
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
            log.warning("event=group_commit_failed group=%s error=%r", self.group_id, exc)

    def pause(self) -> None:
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        self._consumer.resume(*self._consumer.paused())
