"""Delivery order: a hop processes each input partition's offsets in order, none skipped.

faust can hand a hop a partition's records with a hole in them. It drops a fetched record
whose offset is below the partition's read offset; a seek (faust's own, back to the committed
offset on a rebalance or a restart) resets that offset, but records fetched before the seek
and handed over after it set it forward again, and the records read a second time from the
sought offset were then dropped for good. faust also counts such a hole as acknowledged (its
"gap" tracking, meant for compacted topics) and commits past it. Seen in the crash test: a
restarted worker was handed partition 0 from offset 227 while its committed offset was 180
(93 of 2,000 messages lost; 11 to 865 in other runs, about 1 run in 10).

``DeliveryOrder`` keeps, per partition, the next offset the hop must process. A record above
it is not processed: the caller seeks the partition back to the missing offset. Records
still buffered from before the seek are passed over until the re-read arrives. If the
re-read starts at the same record again, the broker has no records before it (a compacted topic, a
transaction marker): the hole is accepted and logged. The next offset also caps faust's
offset commits, so nothing past a record not processed is ever committed.

Pure logic (no faust): ``pipeline/app.py`` applies the verdicts, ``pipeline/faust_app.py``
applies the cap and turns faust's read-offset drop off for the topics kept in order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)

# How long records above a missing offset are passed over, after a seek back to it, before
# the seek is made again (a seek can be overtaken by records fetched before it).
RESEEK_AFTER_SECONDS = 1.0


class Verdict(Enum):
    PROCESS = "process"
    SKIP = "skip"  # not processed, not acknowledged: it will be read again
    SEEK = "seek"  # as SKIP, and the partition must be sought back to ``next_offset``


@dataclass
class _Partition:
    generation: int | None
    expected: int | None  # next offset to process; None: take the first one delivered
    seek_to: int | None = None  # a seek back to this offset is awaited
    seen_first: int = -1  # the record that made the seek (the re-read starts there if the
    # broker has nothing before it)
    max_seen: int = -1  # the highest offset passed over since that seek
    sought_at: float = 0.0


class DeliveryOrder:
    """Per partition (any hashable key), the next offset a hop must process."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 reseek_after: float = RESEEK_AFTER_SECONDS) -> None:
        self._clock = clock
        self._reseek_after = reseek_after
        self._partitions: dict[Hashable, _Partition] = {}
        self.accepted_gaps = 0
        self.seeks = 0
        # The topics whose order this keeps (the hops' inputs, full names): faust's own
        # read-offset check is off for them (pipeline/faust_app.py).
        self.topics: set[str] = set()

    def admit(self, key: Hashable, offset: int, *, generation: int | None,
              current_generation: int | None, committed: int | None) -> Verdict:
        """Whether to process the record at ``offset``; ``committed``: the partition's
        committed offset, where a new consumer generation starts reading."""
        if generation != current_generation:
            return Verdict.SKIP  # fetched before a rebalance: read again after it
        p = self._partitions.get(key)
        if p is None or p.generation != generation:
            p = self._partitions[key] = _Partition(generation, committed)
        if p.expected is None or offset == p.expected:
            p.expected, p.seek_to = offset + 1, None
            return Verdict.PROCESS
        if offset < p.expected:
            return Verdict.SKIP  # read again after a seek, already processed
        now = self._clock()
        if p.seek_to == p.expected:
            if offset == p.seen_first:
                # The re-read from the missing offset began at this record again: the
                # broker has nothing before it (compaction, a transaction marker).
                log.warning("event=offset_hole_accepted partition=%s missing=%d..%d",
                            key, p.expected, offset - 1)
                self.accepted_gaps += 1
                p.expected, p.seek_to = offset + 1, None
                return Verdict.PROCESS
            if offset > p.max_seen and now - p.sought_at < self._reseek_after:
                p.max_seen = offset
                return Verdict.SKIP  # still buffered from before the seek (ascending)
        log.info("event=redelivery_requested partition=%s missing=%d got=%d",
                 key, p.expected, offset)
        p.seek_to, p.seen_first, p.max_seen, p.sought_at = p.expected, offset, offset, now
        self.seeks += 1
        return Verdict.SEEK

    def next_offset(self, key: Hashable) -> int | None:
        p = self._partitions.get(key)
        return p.expected if p is not None else None

    def failed(self, key: Hashable, offset: int) -> None:
        """The record at ``offset`` was admitted but not processed (a stop, an abandoned
        retry): it is the next one to process, and what follows it waits for it."""
        p = self._partitions.get(key)
        if p is not None and p.expected is not None and offset < p.expected:
            p.expected = offset

    def cap(self, key: Hashable, offset: int) -> int:
        """The offset to commit for the partition instead of ``offset``: never past a
        record that was not processed."""
        p = self._partitions.get(key)
        if p is None or p.expected is None:
            return offset
        return min(offset, p.expected)
