"""A hop processes each partition's offsets in order: a hole is sought back, never skipped.

The scenario is the one seen in the crash test: after a rebalance, faust delivered a
partition's records from 227 on while its committed offset (where the new generation must
start) was 180.
"""

from __future__ import annotations

from pipeline.delivery import DeliveryOrder, Verdict

P = ("inbound.raw", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def admit(order: DeliveryOrder, offset: int, *, generation: int = 1, current: int = 1,
          committed: int | None = 180) -> Verdict:
    return order.admit(P, offset, generation=generation, current_generation=current,
                       committed=committed)


def test_records_from_the_committed_offset_on_are_processed_in_order() -> None:
    order = DeliveryOrder()
    assert [admit(order, o) for o in (180, 181, 182)] == [Verdict.PROCESS] * 3
    assert order.cap(P, 183) == 183


def test_a_record_past_a_missing_one_asks_for_the_missing_one_and_waits_for_it() -> None:
    order = DeliveryOrder(clock=Clock())
    assert admit(order, 227) is Verdict.SEEK
    assert order.next_offset(P) == 180
    # still buffered from before the seek: passed over, the seek is not repeated
    assert [admit(order, o) for o in (228, 229)] == [Verdict.SKIP, Verdict.SKIP]
    # the re-read from 180 arrives: processed in order, then what follows
    assert [admit(order, o) for o in range(180, 230)] == [Verdict.PROCESS] * 50
    assert order.accepted_gaps == 0


def test_nothing_past_an_unprocessed_record_is_committed() -> None:
    order = DeliveryOrder()
    admit(order, 227)  # faust would commit past 180..226 (it counts the hole as acked)
    assert order.cap(P, 1200) == 180


def test_a_seek_overtaken_by_earlier_records_is_made_again() -> None:
    clock = Clock()
    order = DeliveryOrder(clock=clock, reseek_after=1.0)
    assert admit(order, 227) is Verdict.SEEK
    clock.now = 0.5
    assert admit(order, 228) is Verdict.SKIP
    clock.now = 1.6  # records keep coming from above the hole: the seek was lost
    assert admit(order, 229) is Verdict.SEEK
    assert order.seeks == 2


def test_a_hole_the_re_read_skips_again_is_accepted() -> None:
    # a compacted topic or a transaction marker: the broker has nothing at 180..226
    order = DeliveryOrder(clock=Clock())
    assert admit(order, 227) is Verdict.SEEK
    assert admit(order, 228) is Verdict.SKIP
    assert admit(order, 227) is Verdict.PROCESS  # the re-read starts at 227 again
    assert admit(order, 228) is Verdict.PROCESS
    assert order.accepted_gaps == 1
    assert order.cap(P, 229) == 229


def test_a_re_read_that_starts_past_the_record_that_made_the_seek_seeks_again() -> None:
    # the seek did not take (seen: faust dropped the re-read records): never accepted
    order = DeliveryOrder(clock=Clock())
    assert admit(order, 227) is Verdict.SEEK
    assert admit(order, 300) is Verdict.SKIP
    assert admit(order, 250) is Verdict.SEEK
    assert order.accepted_gaps == 0
    assert order.cap(P, 1200) == 180


def test_records_fetched_before_a_rebalance_are_left_for_the_re_read() -> None:
    order = DeliveryOrder()
    assert admit(order, 180, generation=1, current=2) is Verdict.SKIP
    # the new generation starts at the committed offset, whatever was seen before
    assert admit(order, 180, generation=2, current=2, committed=180) is Verdict.PROCESS


def test_a_record_not_processed_holds_back_what_follows_it() -> None:
    order = DeliveryOrder(clock=Clock())
    assert [admit(order, o) for o in (180, 181, 182)] == [Verdict.PROCESS] * 3
    order.failed(P, 181)  # 181 gave up (a stop while waiting out an outage); 182 was done
    assert order.cap(P, 183) == 181
    assert admit(order, 183) is Verdict.SEEK  # the next batch: back to 181 first
    assert admit(order, 181) is Verdict.PROCESS


def test_a_new_consumer_group_starts_at_the_first_record_delivered() -> None:
    order = DeliveryOrder()
    assert admit(order, 0, committed=None) is Verdict.PROCESS
    assert admit(order, 2, committed=None) is Verdict.SEEK
