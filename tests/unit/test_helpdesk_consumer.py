"""The helpdesk consumer's guard against the embedded broker's skipped offsets.

aiokafka is replaced by a scripted stand-in (the broker defect cannot be provoked on
demand): it hands out offset 1 before offset 0 exists, as Tansu does with two writers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import TopicPartition

from connectors.helpdesk.consumer import QueueConsumer
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
    """Answers getmany from a script; a seek restarts the script's position."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches
        self.seeks: list[int] = []
        self.commits: list[dict[TopicPartition, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:  # type: ignore[type-arg]
        await asyncio.sleep(0)
        if not self.batches:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        return {TP: [Rec(TP.topic, 0, o) for o in self.batches.pop(0)]}

    async def committed(self, tp: TopicPartition) -> int | None:
        return None

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)


def consumer(script: ScriptedKafka, gap_wait: float) -> QueueConsumer:
    queue = QueueConsumer(KafkaSettings(bootstrap="x:1", topic_prefix="t."), WorkerSettings(),
                          "g", gap_wait_seconds=gap_wait)
    queue._client = script  # type: ignore[assignment]
    return queue


async def take(queue: QueueConsumer, n: int) -> list[int]:
    seen: list[int] = []
    async for record in queue.records():
        seen.append(record.offset)
        if len(seen) == n:
            return seen
    return seen


async def test_a_record_handed_out_before_its_predecessor_waits_for_it():
    # 1 arrives while 0 is not stored yet; after the seek back, 0 and 1 come in order.
    script = ScriptedKafka([[1, 2], [0, 1, 2], [3]])
    queue = consumer(script, gap_wait=5.0)
    assert await asyncio.wait_for(take(queue, 4), 5) == [0, 1, 2, 3]
    assert script.seeks == [0]


async def test_a_gap_that_stays_is_accepted_after_the_wait():
    # Offset 0 never comes (deleted by retention, say): after the wait, 1 is taken.
    script = ScriptedKafka([[1]] * 100)
    queue = consumer(script, gap_wait=0.3)
    assert await asyncio.wait_for(take(queue, 1), 5) == [1]
    assert script.seeks and set(script.seeks) == {0}


async def test_only_confirmed_offsets_are_committed():
    script = ScriptedKafka([[0, 1, 2]])
    queue = consumer(script, gap_wait=5.0)
    records = []
    async for record in queue.records():
        records.append(record)
        if len(records) == 3:
            break
    queue.confirm(records[0])
    queue.confirm(records[1])
    await queue.commit_confirmed()
    await queue.commit_confirmed()  # nothing new: no second request
    assert script.commits == [{TP: 2}]
