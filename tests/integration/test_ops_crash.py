"""Crash and graceful stop of an ingest worker in the middle of a 2,000-message stream.

Property asserted (at-least-once): every input id appears on ``messages.normalized``; a
message may appear twice only after a SIGKILL (output flushed, offset not yet committed),
and then both copies carry the same id and content, so the next id-keyed stage (dedup by
message id) collapses them. Measured here: a SIGKILL before faust's first offset commit
(every ``worker.commit_interval_seconds``, 1 s) repeats everything the killed worker
wrote; a SIGTERM repeats a few messages (faust does not commit the last flushed batch on
stop), never more than one batch (``worker.batch_size``).
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.kafka import client_options
from tests.fixtures.broker import tapped
from tests.fixtures.ops import chat_envelope

pytestmark = pytest.mark.slow

STREAM = 2000
KILL_AFTER = 300  # outputs seen before the worker is stopped


async def produce_stream(kafka_io, first: int, last: int, *, pace: float = 0.02) -> None:
    """Messages first..last-1 in batches of 50, paced so the worker is mid-stream."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_io.bootstrap, enable_idempotence=False,
                                linger_ms=5)
    await producer.start()
    try:
        for start in range(first, last, 50):
            envelopes = [chat_envelope(n) for n in range(start, min(last, start + 50))]
            sent = [await producer.send(kafka_io.names("inbound.raw"), e.to_bytes(),
                                        key=e.sender_key.encode()) for e in envelopes]
            await asyncio.gather(*sent)
            await asyncio.sleep(pace)  # pacing only; nothing waits on time for a result
    finally:
        await producer.stop()


async def committed_offsets(settings, kafka_io) -> dict[int, int | None]:  # type: ignore[no-untyped-def]
    """The worker group's committed offsets on inbound.raw, per partition."""
    consumer = AIOKafkaConsumer(**client_options(settings.kafka),
                                group_id=f"{settings.worker.app_id}-intake",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        name = kafka_io.names("inbound.raw")
        return {p: await consumer.committed(TopicPartition(name, p))
                for p in range(settings.kafka.partitions)}
    finally:
        await consumer.stop()


def offsets_by_partition(records) -> dict[int, str]:  # type: ignore[no-untyped-def]
    """Each partition's offsets as ranges, so a hole shows."""
    by: dict[int, list[int]] = {}
    for r in records:
        by.setdefault(r.partition, []).append(r.offset)
    ranges: dict[int, str] = {}
    for p, offsets in sorted(by.items()):
        offsets.sort()
        runs, start = [], offsets[0]
        for a, b in zip(offsets, offsets[1:] + [None], strict=True):
            if b != a + 1:
                runs.append(f"{start}..{a}")
                start = b
        ranges[p] = ",".join(runs)
    return ranges


async def where_in_input(kafka_io, ids: set[str]) -> str:  # type: ignore[no-untyped-def]
    """Where the lost messages sat on inbound.raw: partition and offset ranges."""
    records = await kafka_io.read("inbound.raw", count=STREAM, timeout=30)
    lost: dict[int, list[int]] = {}
    for r in records:
        if r.value["id"] in ids:
            lost.setdefault(r.partition, []).append(r.offset)
    return "; ".join(f"inbound.raw[{p}] offsets {min(o)}..{max(o)} ({len(o)})"
                     for p, o in sorted(lost.items()))


async def interrupt_mid_stream(settings, kafka_io, pipeline_process, sig: int):  # type: ignore[no-untyped-def]
    await kafka_io.create_topics()
    expected = {chat_envelope(n).id: chat_envelope(n) for n in range(STREAM)}
    worker = pipeline_process(["worker", "--stages", "ingest"], tapped(settings, "messages.normalized"))
    stream = asyncio.create_task(produce_stream(kafka_io, 0, STREAM))
    seen = await kafka_io.read("messages.normalized", count=KILL_AFTER, timeout=60)
    code = await asyncio.to_thread(worker.stop, sig)
    committed_at_stop = await committed_offsets(settings, kafka_io)
    stopped_at = len(await kafka_io.read("messages.normalized", count=STREAM, timeout=2))
    assert len(seen) >= KILL_AFTER
    await stream
    pipeline_process(["worker", "--stages", "ingest"], tapped(settings, "messages.normalized"))
    out = await kafka_io.read(
        "messages.normalized", timeout=60, quiet=2.0,
        until=lambda records: expected.keys() <= {r.value["id"] for r in records})
    ids = Counter(r.value["id"] for r in out)
    missing = expected.keys() - ids.keys()
    assert not missing, (f"{len(missing)} of {STREAM} messages lost: "
                         f"{await where_in_input(kafka_io, missing)}; committed when stopped: "
                         f"{committed_at_stop}; now: {await committed_offsets(settings, kafka_io)}; "
                         f"output offsets: {offsets_by_partition(out)}")
    assert set(ids) == set(expected), "messages that were never sent appeared"
    for record in out:  # a duplicate is the same message: an id-keyed consumer collapses it
        assert record.value["source_id"] == expected[record.value["id"]].source_id
        assert record.value["text"] == expected[record.value["id"]].text
    duplicates = sum(n - 1 for n in ids.values())
    return code, stopped_at, duplicates


async def test_sigkill_mid_stream_loses_no_message(settings, kafka_io, pipeline_process):
    code, stopped_at, duplicates = await interrupt_mid_stream(
        settings, kafka_io, pipeline_process, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert stopped_at < STREAM, "the worker finished before it was killed: not mid-stream"
    print(f"killed after {stopped_at} outputs; {duplicates} redelivered duplicate(s)")


async def test_sigterm_mid_stream_loses_nothing(settings, kafka_io, pipeline_process):
    code, stopped_at, duplicates = await interrupt_mid_stream(
        settings, kafka_io, pipeline_process, signal.SIGTERM)
    assert code == 0
    assert stopped_at < STREAM, "the worker finished before it was stopped: not mid-stream"
    assert duplicates <= settings.worker.batch_size, (
        f"{duplicates} message(s) processed twice after a graceful stop")
    print(f"stopped after {stopped_at} outputs; {duplicates} redelivered duplicate(s)")
