"""Keep a ``Directory`` in step with the compacted topic ``directory.employees``.

Every worker reads the whole topic (all partitions, no consumer group), like a faust
GlobalTable, and then follows it. ``catch_up(since)`` gives read-your-writes: it returns once
everything written to the topic before ``since`` is applied, so a directory change made
before a message was produced applies to that message, without restarting any worker.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from pipeline.errors import BrokerError
from pipeline.identify.directory import Directory
from pipeline.kafka import client_options
from pipeline.settings import KafkaSettings
from pipeline.topics import Topic, TopicNames

log = logging.getLogger(__name__)


class DirectoryReader:
    """Consumes ``directory.employees`` into ``self.directory``; start, then ``run`` forever."""

    def __init__(self, kafka: KafkaSettings, default_region: str = "FR") -> None:
        self.kafka = kafka
        self.directory = Directory(default_region=default_region)
        self.topic = TopicNames(kafka.topic_prefix)(Topic.DIRECTORY)
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._applied: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()
        # Wall-clock time (epoch seconds) at which the last completed catch-up started.
        self.consistent_as_of = 0.0
        self.bad_records = 0

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(**client_options(self.kafka), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        try:
            await consumer.start()
            parts = consumer.partitions_for_topic(self.topic)
            deadline = time.monotonic() + 15
            while not parts and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                await consumer._client.force_metadata_update()  # topic just created
                parts = consumer.partitions_for_topic(self.topic)
        except KafkaError as exc:
            await consumer.stop()
            raise BrokerError(f"cannot read {self.topic}: {exc}") from exc
        if not parts:
            await consumer.stop()
            raise BrokerError(f"topic {self.topic} does not exist (run `pipeline topics --create`)")
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(parts)]
        consumer.assign(self._partitions)
        await consumer.seek_to_beginning(*self._partitions)
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def run(self) -> None:
        """Apply records as they arrive, until cancelled."""
        assert self._consumer is not None, "start() first"
        while True:
            batch = await self._consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    try:
                        self.directory.apply_record(record.key, record.value)
                    except (ValidationError, UnicodeDecodeError) as exc:
                        self.bad_records += 1
                        log.warning("event=directory_bad_record partition=%s offset=%s error=%s",
                                    tp.partition, record.offset, exc)
                    self._applied[tp] = record.offset + 1
            for tp in self._partitions:
                # Compaction can leave gaps: what the consumer has moved past is applied.
                position = await self._consumer.position(tp)
                if not batch.get(tp):
                    self._applied[tp] = max(self._applied.get(tp, 0), position)
            async with self._progress:
                self._progress.notify_all()

    async def catch_up(self, since: float | None = None, timeout: float = 30.0) -> None:
        """Return once every record written before ``since`` (epoch s; default now) is applied."""
        if since is not None and since < self.consistent_as_of:
            return
        assert self._consumer is not None, "start() first"
        started = time.time()
        try:
            ends = await self._consumer.end_offsets(self._partitions)
        except KafkaError as exc:
            raise BrokerError(f"cannot read the end of {self.topic}: {exc}") from exc

        def caught_up() -> bool:
            return all(self._applied.get(tp, 0) >= end for tp, end in ends.items())

        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(caught_up), timeout)
        self.consistent_as_of = max(self.consistent_as_of, started)
