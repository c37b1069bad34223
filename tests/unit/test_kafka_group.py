"""The group consumer commits only what its caller confirmed (the helpdesk's "nothing is
committed before the helpdesk has it").

aiokafka is replaced by a scripted stand-in; the embedded broker's skipped offsets are the
fetcher-level guard's business (tests/unit/test_kafka_gapguard.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pipeline.kafka import TopicPartition
from pipeline.kafka.group import GroupConsumer
from pipeline.settings import KafkaSettings, WorkerSettings

TP = TopicPartition("t.queue.tech", 0)


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = b"{}"


class ScriptedKafka:
    """Answers getmany from a script and records commits."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches
        self.commits: list[dict[TopicPartition, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:  # type: ignore[type-arg]
        await asyncio.sleep(0)
        if not self.batches:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        return {TP: [Rec(TP.topic, 0, o) for o in self.batches.pop(0)]}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)


def group(script: ScriptedKafka) -> GroupConsumer:
    consumer = GroupConsumer(KafkaSettings(bootstrap="x:1", topic_prefix="t."), WorkerSettings(),
                             "g", prefixes=["queue."])
    consumer._client = script  # type: ignore[assignment]
    return consumer


async def test_records_carry_their_logical_topic_in_order() -> None:
    consumer = group(ScriptedKafka([[0, 1], [2]]))
    seen = []
    async for record in consumer.records():
        seen.append((record.topic, record.offset))
        if len(seen) == 3:
            break
    assert seen == [("queue.tech", 0), ("queue.tech", 1), ("queue.tech", 2)]


async def test_only_confirmed_offsets_are_committed() -> None:
    script = ScriptedKafka([[0, 1, 2]])
    consumer = group(script)
    records = []
    async for record in consumer.records():
        records.append(record)
        if len(records) == 3:
            break
    consumer.confirm(records[0])
    consumer.confirm(records[1])
    await consumer.commit_confirmed()
    await consumer.commit_confirmed()  # nothing new: no second request
    assert script.commits == [{TP: 2}]
