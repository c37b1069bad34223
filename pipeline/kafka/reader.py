"""Reading topics: a bounded read, a follower, a compacted view.

- ``read_records`` reads what a topic holds *now* and stops, so it ends on a live topic
  (operator tools, checkpoints, the quarantine, replay);
- ``follow`` yields records as they arrive (``pipeline tail``, benchmarks);
- ``read_compacted`` is the latest value per key of a compacted topic (tombstones delete).

On the embedded broker ListOffsets answers an end offset *below* the records Fetch serves
whenever the last batch holds several records (it answers that batch's base offset + 1), so
no read here trusts end offsets alone: a bounded read goes on to the high watermark its
first fetch reports, and ``true_ends`` corrects a set of ends with one fetch each. aiokafka's errors
become ``BrokerError`` at this edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from pipeline.errors import BrokerError
from pipeline.kafka.client import client_options
from pipeline.runtime_settings import KafkaSettings

__all__ = ["ConsumerRecord", "PartitionSpan", "TopicPartition", "admin", "consumer",
           "fetched_ends", "follow", "partitions_of", "read_compacted", "read_records", "spans",
           "started_consumer", "true_ends", "wait_for_partitions"]


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
async def consumer(kafka: KafkaSettings, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A group-less consumer with nothing assigned (assign partitions explicitly).

    Its fetches wait at most 50 ms for data (aiokafka: 500): the embedded broker answers an
    empty fetch only when that wait is over, and a bounded read fetches every partition."""
    options.setdefault("fetch_max_wait_ms", 50)
    client = AIOKafkaConsumer(**client_options(kafka), group_id=None,
                              enable_auto_commit=False, auto_offset_reset="earliest", **options)
    async with _broker_client(client, client.start, client.stop, kafka.bootstrap) as started:
        yield started


@asynccontextmanager
async def admin(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(**client_options(kafka), request_timeout_ms=15_000)
    async with _broker_client(client, client.start, client.close, kafka.bootstrap) as started:
        yield started


async def started_consumer(kafka: KafkaSettings, **options: Any) -> AIOKafkaConsumer:
    """A started group-less consumer that the caller stops (long-lived followers)."""
    client = AIOKafkaConsumer(**client_options(kafka), group_id=None, enable_auto_commit=False,
                              auto_offset_reset="earliest", **options)
    try:
        await client.start()
    except KafkaError as exc:
        await client.stop()
        raise BrokerError(f"cannot reach the broker at {kafka.bootstrap}: {exc}") from exc
    return client


async def fetched_ends(client: AIOKafkaConsumer, tps: Sequence[TopicPartition],
                       ) -> dict[TopicPartition, int]:
    """Each partition's end: ListOffsets' answer, raised to the high watermark of the last
    fetch where one was made (the embedded broker's ListOffsets can answer low)."""
    try:
        listed = await client.end_offsets(list(tps))
    except KafkaError as exc:
        raise BrokerError(f"cannot read end offsets: {exc}") from exc
    return {tp: max(listed[tp], client.highwater(tp) or 0) for tp in tps}


async def true_ends(kafka: KafkaSettings, listed: Mapping[Any, int],
                    timeout: float = 10.0) -> dict[Any, int]:
    """``listed`` end offsets (ListOffsets' answers), corrected by one fetch per partition.

    The embedded broker answers ListOffsets with the last *batch's base* offset + 1, so a
    partition whose last batch holds several records looks shorter than it is (measured:
    8 records in two batches of 5 and 3, end 6). A fetch at that offset reports the true
    high watermark. Keys may be any (topic, partition) tuples, e.g. faust's ``TP``."""
    if not listed:
        return {}
    tps = {TopicPartition(tp[0], tp[1]): tp for tp in listed}
    ends = dict(listed)
    async with consumer(kafka) as client:
        client.assign(list(tps))
        for tp, original in tps.items():
            client.seek(tp, max(listed[original] - 1, 0))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiting = set(tps)
        while waiting and loop.time() < deadline:
            await client.getmany(*waiting, timeout_ms=100)
            for tp in list(waiting):
                watermark = client.highwater(tp)
                if watermark is not None:
                    ends[tps[tp]] = max(ends[tps[tp]], watermark)
                    waiting.discard(tp)
        if waiting:
            raise BrokerError(f"no fetch answer for {len(waiting)} partition(s) within "
                              f"{timeout:g} s while checking end offsets")
    return ends


async def partitions_of(client: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions; empty when the topic does not exist."""
    parts = client.partitions_for_topic(topic)
    if parts is None:
        # The consumer's own metadata covers only what it has assigned: ask for every
        # topic's (the one place that uses aiokafka's client for it).
        cluster = await client._client.fetch_all_metadata()
        parts = cluster.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(parts or ())]


async def wait_for_partitions(client: AIOKafkaConsumer, topic: str,
                              timeout: float = 15.0) -> list[TopicPartition]:
    """The topic's partitions, waiting up to ``timeout`` for a topic just created."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (tps := await partitions_of(client, topic)):
        if loop.time() > deadline:
            raise BrokerError(f"topic {topic} does not exist (run `pipeline topics --create`)")
        await asyncio.sleep(0.2)
    return tps


async def spans(client: AIOKafkaConsumer, topics: list[str]) -> list[PartitionSpan]:
    """Begin and end offsets of every partition of ``topics`` (missing topics: none).

    The end is what ListOffsets answers; on the embedded broker it can be low (see the
    module docstring), so callers that compare it with committed offsets clamp it."""
    tps: list[TopicPartition] = []
    for topic in topics:
        tps.extend(await partitions_of(client, topic))
    if not tps:
        return []
    begins = await client.beginning_offsets(tps)
    ends = await client.end_offsets(tps)
    return [PartitionSpan(tp.topic, tp.partition, begins[tp], ends[tp]) for tp in tps]


async def read_records(client: AIOKafkaConsumer, topic: str | Sequence[str], *,
                       since_ms: int | None = None, last: int | None = None,
                       timeout: float = 30.0) -> list[ConsumerRecord]:
    """The records ``topic`` (or several topics) holds now: all, those since ``since_ms``, or
    the ``last`` N of each partition.

    Stops at the end of each partition as seen at start: the larger of ListOffsets' answer
    and the high watermark of the partition's first fetch (a live topic still ends)."""
    topics = [topic] if isinstance(topic, str) else list(topic)
    parts = await spans(client, topics)
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
    # Every partition is fetched once, even when ListOffsets says it is empty: the fetch's
    # high watermark is the end that counts.
    records = await _read_spans(client, starts, {tp: s.end for tp, s in zip(tps, parts,
                                                                              strict=True)},
                                timeout=timeout, what=", ".join(topics))
    if since_ms is not None:
        records = [r for r in records if r.timestamp >= since_ms]
    return records


async def _read_spans(client: AIOKafkaConsumer, starts: dict[TopicPartition, int],
                      listed_ends: dict[TopicPartition, int], *, timeout: float,
                      what: str) -> list[ConsumerRecord]:
    client.assign(list(starts))
    for tp, offset in starts.items():
        client.seek(tp, offset)
    ends = dict(listed_ends)
    settled: set[TopicPartition] = set()  # partitions whose end includes a fetch's watermark
    pending = set(starts)
    records: list[ConsumerRecord] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        if loop.time() > deadline:
            raise BrokerError(f"timed out reading {what} ({len(records)} records read; "
                              f"{len(pending)} partition(s) short of their end)")
        batch = await client.getmany(*pending, timeout_ms=200)
        for tp in pending:
            watermark = client.highwater(tp)
            if tp not in settled and watermark is not None:
                ends[tp] = max(ends[tp], watermark)
                settled.add(tp)
        for tp, items in batch.items():
            records.extend(r for r in items if r.offset < ends[tp])
        for tp in list(pending):
            if tp in settled and await client.position(tp) >= ends[tp]:
                pending.discard(tp)
    # The partitions stay assigned (the next read assigns its own): aiokafka's stop() hangs
    # after assign([]) while its fetcher waits for an assignment.
    return records


async def read_compacted(kafka: KafkaSettings, topic: str, *, key_prefix: str = "",
                         timeout: float = 30.0) -> dict[str, bytes]:
    """The latest value per key (keys starting with ``key_prefix``) of a compacted topic;
    a tombstone removes its key."""
    latest: dict[str, bytes] = {}
    async with consumer(kafka) as client:
        for record in await read_records(client, topic, timeout=timeout):
            key = record.key.decode("utf-8", "replace") if record.key is not None else ""
            if not key.startswith(key_prefix):
                continue
            if record.value is None:
                latest.pop(key, None)
            else:
                latest[key] = record.value
    return latest


async def follow(kafka: KafkaSettings, topics: Sequence[str], *, from_beginning: bool = True,
                 idle_timeout: float | None = None) -> AsyncIterator[ConsumerRecord]:
    """Every record of ``topics`` as it arrives (from the beginning or from now on); ends
    after ``idle_timeout`` seconds without a record, else runs until cancelled."""
    client = AIOKafkaConsumer(*topics, **client_options(kafka), group_id=None,
                              enable_auto_commit=False,
                              auto_offset_reset="earliest" if from_beginning else "latest")
    async with _broker_client(client, client.start, client.stop, kafka.bootstrap):
        poll_ms = int(idle_timeout * 1000) if idle_timeout else 1000
        while True:
            batch = await client.getmany(timeout_ms=poll_ms)
            if not batch and idle_timeout:
                return
            for items in batch.values():
                for record in items:
                    yield record
