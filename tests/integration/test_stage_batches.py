"""The hop runtime's batches on the real broker: no message lost or doubled, table writes on
the right partition.

Found by bench/pipeline_throughput.py: while a handler awaited (identify waits for the
directory to catch up), faust's buffering task read an event the runtime had marked current
for table writes, buffered it a second time and dropped the new one. These tests feed a
backlog over several partitions through stages whose handlers await, and compare ids.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict

import pytest
from aiokafka import AIOKafkaProducer

from pipeline.envelope import Envelope
from tests.fixtures.broker import override, tapped
from tests.fixtures.kafka_io import KafkaIO
from tests.fixtures.ops import chat_envelope

pytestmark = pytest.mark.slow

BACKLOG = 2000


async def produce_backlog(kafka_io, topic: str, envelopes: list[Envelope],  # type: ignore[no-untyped-def]
                          key: str = "sender") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_io.bootstrap, enable_idempotence=False,
                                linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(
            kafka_io.names(topic), e.to_bytes(),
            key=(e.sender_key if key == "sender" else e.sender.app_identity.account_id).encode())
            for e in envelopes]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def test_an_awaiting_stage_neither_drops_nor_doubles_messages(settings, pipeline_process):
    settings = override(settings, kafka={"partitions": 4})
    kafka_io = KafkaIO(settings)
    await kafka_io.create_topics()
    envelopes = [chat_envelope(n, accounts=97) for n in range(BACKLOG)]
    await produce_backlog(kafka_io, "inbound.raw", envelopes)
    # identify awaits the directory reader's catch-up for every batch of older messages
    pipeline_process(["worker", "--stages", "identify"],
                     tapped(settings, "messages.identified"))

    expected = {e.id for e in envelopes}
    out = await kafka_io.read(
        "messages.identified", timeout=120, quiet=2.0,
        until=lambda records: expected <= {r.value["id"] for r in records})

    seen = Counter(r.value["id"] for r in out)
    assert not expected - seen.keys(), f"{len(expected - seen.keys())} messages lost"
    assert [i for i, n in seen.items() if n > 1] == []  # no crash, so no redelivery either


async def test_dedup_writes_each_account_to_its_own_partition(settings, pipeline_process):
    """The open-cases changelog of an account lies on the partition of its messages, so the
    worker that gets that partition after a rebalance restores that account's cases."""
    settings = override(settings, kafka={"partitions": 4})
    kafka_io = KafkaIO(settings)
    await kafka_io.create_topics()
    envelopes = [chat_envelope(n, accounts=97) for n in range(600)]
    await produce_backlog(kafka_io, "messages.accepted", envelopes, key="account")
    pipeline_process(["worker", "--stages", "dedup"], tapped(settings, "cases.updates"))

    updates = await kafka_io.read("cases.updates", count=len(envelopes), timeout=120)
    partition_of = {r.key: r.partition for r in updates}
    changelog = await kafka_io.read(
        f"{settings.worker.app_id}-cases-dedup-open-cases-changelog", prefixed=False,
        until=lambda records: {json.loads(r.key) for r in records} >= partition_of.keys())

    wrong: dict[str, set[int]] = defaultdict(set)
    for record in changelog:
        account = json.loads(record.key)  # faust writes table keys as JSON
        if record.partition != partition_of[account]:
            wrong[account].add(record.partition)
    assert len(partition_of) == 97
    assert len({r.partition for r in changelog}) == 4
    assert dict(wrong) == {}
