"""The offset-gap guard on the real embedded broker: several writers on one partition,
followers of its tail, ids compared.

With two writers on one partition the embedded broker can answer a fetch with offset N+1
before N is stored; a follower without the guard then skips N for good (about 1 in 10,000
records, bench/broker_tail_reads.py). A guarded follower (every consumer the project makes)
must see every acknowledged record, in every round. An unguarded follower reads the same
records in the same run, for comparison only: its misses are printed, not asserted (they
are rare and random).
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from pipeline.kafka import ensure_topics, follow, gapguard
from pipeline.settings import Settings
from pipeline.topics import TopicNames, TopicSpec

pytestmark = pytest.mark.slow

ROUNDS = 3
WRITERS = 4
PER_WRITER = 1500


async def write(bootstrap: str, topic: str, name: str, acked: set[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks=-1)
    await producer.start()
    try:
        for n in range(PER_WRITER):
            value = f"{name}-{n}".encode()
            await producer.send_and_wait(topic, value, key=b"one-partition")
            acked.add(value)
    finally:
        await producer.stop()


async def tail(settings: Settings, topic: str, seen: set[bytes]) -> None:
    async for record in follow(settings.kafka, [topic]):
        seen.add(record.value)


async def one_round(settings: Settings, topic: str) -> tuple[int, int, int]:
    acked: set[bytes] = set()
    guarded: set[bytes] = set()
    unguarded: set[bytes] = set()
    followers = [asyncio.create_task(tail(settings, topic, guarded))]
    with gapguard.disabled():  # its fetch task inherits this context
        followers.append(asyncio.create_task(tail(settings, topic, unguarded)))
    await asyncio.sleep(1.0)  # followers assigned and fetching before the writes start
    await asyncio.gather(*(write(settings.kafka.bootstrap, topic, f"{topic}-w{i}", acked)
                           for i in range(WRITERS)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not acked <= guarded and loop.time() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # the unguarded follower gets the same last second
    for task in followers:
        task.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    return len(acked), len(acked - guarded), len(acked - unguarded)


async def test_followers_miss_no_acknowledged_record_with_several_writers(settings) -> None:
    assert settings.kafka.gap_guard_enabled  # the embedded broker: auto means on
    names = TopicNames(settings.kafka.topic_prefix)
    topics = [names(f"gap-live-{n}") for n in range(ROUNDS)]
    await ensure_topics(settings.kafka, extra=[
        TopicSpec(f"gap-live-{n}", key="test", description="gap test", partitions=1)
        for n in range(ROUNDS)])
    held_before = gapguard.stats().held
    results = [await one_round(settings, topic) for topic in topics]
    held = gapguard.stats().held - held_before
    print(f"\nrounds (acknowledged, missed guarded, missed unguarded): {results}; "
          f"fetches held at a gap: {held}")
    for acked, missed_guarded, _ in results:
        assert acked == WRITERS * PER_WRITER
        assert missed_guarded == 0, results
