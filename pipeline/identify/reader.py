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
from typing import Any

from pydantic import ValidationError

from pipeline.errors import BrokerError
from pipeline.identify.directory import Directory
from pipeline.kafka import TopicPartition, fetched_ends, started_consumer, wait_for_partitions
from pipeline.runtime_settings import KafkaSettings
from pipeline.topics import Topic, TopicNames

log = logging.getLogger(__name__)


class DirectoryReader:
    """Consumes ``directory.employees`` into ``self.directory``; start, then ``run`` forever."""

    def __init__(self, kafka: KafkaSettings, default_region: str = "FR") -> None:
        self.kafka = kafka
        self.directory = Directory(default_region=default_region)
        self.topic = TopicNames(kafka.topic_prefix)(Topic.DIRECTORY)
        self._consumer: Any = None
        self._partitions: list[TopicPartition] = []
        self._applied: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()
        # Wall-clock time (epoch seconds) at which the last completed catch-up started.
        self.consistent_as_of = 0.0
        self.bad_records = 0

    async def start(self) -> None:
        # Short fetch waits: a catch-up waits for one fetch answered after it began, and the
        # embedded broker answers an idle fetch only when the wait is over.
        consumer = await started_consumer(self.kafka, fetch_max_wait_ms=25)
        try:
            self._partitions = await wait_for_partitions(consumer, self.topic)
        except BrokerError:
            await consumer.stop()
            raise
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
        started_ms = started * 1000
        ends = await fetched_ends(self._consumer, self._partitions)

        def caught_up() -> bool:
            # ListOffsets can answer low on the embedded broker: what counts is also the high
            # watermark of a fetch answered after the wait began.
            for tp in self._partitions:
                if (self._consumer.last_poll_timestamp(tp) or 0) < started_ms:
                    return False
                end = max(ends[tp], self._consumer.highwater(tp) or 0)
                if self._applied.get(tp, 0) < end:
                    return False
            return True

        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(caught_up), timeout)
        self.consistent_as_of = max(self.consistent_as_of, started)
