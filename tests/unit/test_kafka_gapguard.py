"""The offset-gap guard, deterministically: fetch answers built by hand, a clock we move.

A fetch at offset 4 answered with offsets 4, 6 and 7 while 5 is not stored yet (what the
embedded broker does when two writers race on one partition) must deliver 4 and hold the
position on 5 until 5 arrives; only after the patience is a gap accepted. These tests also
fail loudly when aiokafka's fetcher internals that the guard patches move.
"""

from __future__ import annotations

import inspect
import struct

import aiokafka
import pytest
from aiokafka.consumer import fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from pipeline.errors import BrokerError
from pipeline.kafka import gapguard

TP = TopicPartition("messages.accepted", 3)


def fetch_answer(*offsets: int) -> MemoryRecords:
    """What a broker returns for a fetch: one single-record batch per offset, in order."""
    buffer = bytearray()
    for offset in offsets:
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0,
                                            producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                            batch_size=1 << 16)
        builder.append(0, timestamp=None, key=b"acc-1", value=f"msg-{offset}".encode(),
                       headers=[])
        batch = builder.build()
        batch[0:8] = struct.pack(">q", offset)  # the broker assigns the base offset
        buffer += batch
    return MemoryRecords(bytes(buffer))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def consume(records: MemoryRecords, fetch_offset: int) -> tuple[list[int], int]:
    """Offsets delivered from one fetch answer, and where the next fetch will ask."""
    partition_records = fetcher.PartitionRecords(
        TP, records, [], fetch_offset, None, None, True, fetcher.READ_UNCOMMITTED)
    delivered = [record.offset for record in partition_records]
    return delivered, partition_records.next_fetch_offset


@pytest.fixture
def guarded() -> gapguard.GapPolicy:
    clock = Clock()
    with gapguard.policy(gapguard.GapPolicy(enabled=True, patience=5.0, clock=clock)) as policy:
        yield policy


def test_nothing_past_a_missing_offset_is_delivered_until_it_arrives(guarded) -> None:
    delivered, next_fetch = consume(fetch_answer(4, 6, 7), fetch_offset=4)
    assert delivered == [4]
    assert next_fetch == 5  # the next fetch asks for 5 again

    guarded.clock.now += 1.0  # 5 still missing a second later: still held
    assert consume(fetch_answer(6, 7), fetch_offset=5) == ([], 5)

    # 5 is stored now: the same fetch delivers 5, 6, 7 in order.
    assert consume(fetch_answer(5, 6, 7), fetch_offset=5) == ([5, 6, 7], 8)
    assert guarded.stats.held == 2
    assert guarded.stats.accepted == 0


def test_a_gap_is_accepted_after_the_patience(guarded) -> None:
    assert consume(fetch_answer(6, 7), fetch_offset=5) == ([], 5)
    guarded.clock.now += 4.9
    assert consume(fetch_answer(6, 7), fetch_offset=5) == ([], 5)
    guarded.clock.now += 0.2  # 5.1 s after the gap was first seen: compaction, not a race
    assert consume(fetch_answer(6, 7), fetch_offset=5) == ([6, 7], 8)
    assert guarded.stats.accepted == 1


def test_patience_restarts_for_each_new_gap(guarded) -> None:
    assert consume(fetch_answer(6), fetch_offset=5) == ([], 5)
    guarded.clock.now += 6
    assert consume(fetch_answer(6), fetch_offset=5) == ([6], 7)
    # A later gap on the same partition waits its own patience.
    assert consume(fetch_answer(9), fetch_offset=7) == ([], 7)


def test_a_fetch_inside_a_batch_is_not_a_gap(guarded) -> None:
    # A broker answers with the whole batch holding the asked offset: base below, no gap.
    assert consume(fetch_answer(3, 4, 5), fetch_offset=4) == ([4, 5], 6)
    assert guarded.stats.held == 0


def test_without_the_guard_the_consumer_moves_past_the_gap() -> None:
    # What every Kafka client does on its own, and why records were lost.
    with gapguard.policy(gapguard.GapPolicy(enabled=False)):
        assert consume(fetch_answer(4, 6, 7), fetch_offset=4) == ([4, 6, 7], 8)


def test_disabled_block_turns_the_guard_off_for_consumers_started_in_it(guarded) -> None:
    with gapguard.disabled():
        assert consume(fetch_answer(4, 6), fetch_offset=4) == ([4, 6], 7)
    assert consume(fetch_answer(4, 6), fetch_offset=4) == ([4], 5)


def test_aiokafka_internals_the_guard_patches_are_where_it_expects() -> None:
    """Fails when an aiokafka upgrade moved what gapguard.py relies on: re-check it then."""
    assert aiokafka.__version__ == gapguard.CHECKED_AIOKAFKA
    gapguard.install()
    assert fetcher.PartitionRecords is gapguard.GuardedPartitionRecords
    original = inspect.signature(gapguard._Original.__init__)
    assert list(original.parameters)[:5] == [
        "self", "tp", "records", "aborted_transactions", "fetch_offset"]
    # The fetcher builds its PartitionRecords by the module global the guard replaces, and
    # PartitionRecords reads its batches through has_next()/next_batch().
    assert "PartitionRecords(" in inspect.getsource(fetcher.Fetcher._proc_fetch_request)
    unpack = inspect.getsource(gapguard._Original._unpack_records)
    assert "records.has_next()" in unpack and "records.next_batch()" in unpack
    # The producer metadata guard: aiokafka's client keeps its refresh list in _topics,
    # add_topic() extends it, and _wait_on_metadata() skips that for a topic it already has.
    from aiokafka.client import AIOKafkaClient

    from pipeline.kafka import metadataguard

    wait = inspect.getsource(metadataguard._original_wait_on_metadata)
    assert "self.add_topic(topic)" in wait and "partitions is not None" in wait
    assert "self._topics.add(topic)" in inspect.getsource(AIOKafkaClient.add_topic)


def test_another_aiokafka_version_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(fetcher, "PartitionRecords", gapguard._Original)
    monkeypatch.setattr(aiokafka, "__version__", "0.13.0")
    with pytest.raises(BrokerError, match="written against aiokafka 0.12.0"):
        gapguard.install()

