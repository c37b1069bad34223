"""Bounded reads of topics for the operator tools: read up to the end offsets seen at start.

Every tool here reads what a topic holds *now* and stops, so it terminates on a live topic.
aiokafka errors become BrokerError at this edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from pipeline.errors import BrokerError
from pipeline.kafka import client_options
from pipeline.settings import KafkaSettings


@dataclass(frozen=True)
class PartitionSpan:
    """What one partition holds: records from ``begin`` (inclusive) to ``end`` (exclusive)."""

    topic: str
    partition: int
    begin: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.begin)


@asynccontextmanager
async def _broker_client(client: Any, start: Callable[[], Awaitable[object]],
                         stop: Callable[[], Awaitable[object]],
                         bootstrap: str | None) -> AsyncIterator[Any]:
    """``client`` started, stopped on exit; Kafka errors become ``BrokerError``."""
    try:
        await start()
    except KafkaError as exc:
        await stop()
        raise BrokerError(f"cannot reach the broker at {bootstrap}: {exc}") from exc
    try:
        yield client
    except KafkaError as exc:
        raise BrokerError(f"broker request failed: {exc}") from exc
    finally:
        await stop()


@asynccontextmanager
async def consumer(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaConsumer]:
    """A group-less consumer with nothing assigned (assign partitions explicitly)."""
    client = AIOKafkaConsumer(**client_options(kafka), group_id=None,
                              enable_auto_commit=False, auto_offset_reset="earliest")
    async with _broker_client(client, client.start, client.stop, kafka.bootstrap) as started:
        yield started


@asynccontextmanager
async def admin(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(**client_options(kafka), request_timeout_ms=15_000)
    async with _broker_client(client, client.start, client.close, kafka.bootstrap) as started:
        yield started


async def partitions_of(client: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions; empty when the topic does not exist."""
    parts = client.partitions_for_topic(topic)
    if parts is None:
        await client._client.force_metadata_update()
        parts = client.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(parts or ())]


async def spans(client: AIOKafkaConsumer, topics: list[str]) -> list[PartitionSpan]:
    """Begin and end offsets of every partition of ``topics`` (missing topics: none)."""
    tps: list[TopicPartition] = []
    for topic in topics:
        tps.extend(await partitions_of(client, topic))
    if not tps:
        return []
    begins = await client.beginning_offsets(tps)
    ends = await client.end_offsets(tps)
    return [PartitionSpan(tp.topic, tp.partition, begins[tp], ends[tp]) for tp in tps]


async def read_records(client: AIOKafkaConsumer, topic: str, *, since_ms: int | None = None,
                       last: int | None = None, timeout: float = 30.0) -> list[ConsumerRecord]:
    """The records ``topic`` holds now: all, those since ``since_ms``, or the ``last`` N of
    each partition. Stops at the end offsets seen at start (a live topic still ends)."""
    parts = [s for s in await spans(client, [topic]) if s.size]
    if not parts:
        return []
    tps = [TopicPartition(s.topic, s.partition) for s in parts]
    starts = {tp: s.begin for tp, s in zip(tps, parts, strict=True)}
    if last is not None:
        starts = {tp: max(s.begin, s.end - last) for tp, s in zip(tps, parts, strict=True)}
    if since_ms is not None:
        found = await client.offsets_for_times({tp: since_ms for tp in tps})
        for tp, s in zip(tps, parts, strict=True):
            hit = found.get(tp)
            starts[tp] = max(starts[tp], hit.offset if hit is not None else s.end)
    ends = {tp: s.end for tp, s in zip(tps, parts, strict=True)}
    pending = {tp for tp in tps if starts[tp] < ends[tp]}
    if not pending:
        return []
    client.assign(list(pending))
    for tp in pending:
        client.seek(tp, starts[tp])
    records: list[ConsumerRecord] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        if loop.time() > deadline:
            raise BrokerError(f"timed out reading {topic} ({len(records)} records read)")
        batch = await client.getmany(*pending, timeout_ms=500)
        for tp, items in batch.items():
            for record in items:
                if record.offset < ends[tp]:
                    records.append(record)
            if items and items[-1].offset >= ends[tp] - 1:
                pending.discard(tp)
        for tp in list(pending):
            if await client.position(tp) >= ends[tp]:
                pending.discard(tp)
    client.assign([])
    if since_ms is not None:
        records = [r for r in records if r.timestamp >= since_ms]
    return records
