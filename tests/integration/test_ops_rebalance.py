"""Rebalance: a second worker joins mid-stream, then the first one stops (SIGTERM).

Both workers run every stage (``pipeline worker``) in one consumer group on the real
broker; signed-in chat messages of ``CUSTOMERS`` accounts stream into ``inbound.raw``,
every message of an account quoting the same order code.

Properties asserted, comparing ids:

- at-least-once: every message id sent appears on a final topic (``cases.routed``,
  ``messages.spam`` or ``pipeline.deadletter``) and no other id does; an id appears more
  than once only as a re-delivery (records processed but not committed when partitions
  moved), and then every copy is the same message (same text, same source id) in the same
  case, which is what dedup's id-keyed redelivery check makes of it;
- dedup state survives the move of a partition: every account's case was opened by the
  first worker before the second one existed, and every message of that account sent
  after the first worker stopped is merged into that very case (same case id) by the
  survivor, which only knows the case from the table's changelog. Among those accounts
  are some whose partition the first worker still owned after the second joined (it
  decided on their messages sent after the second worker was seen working), so their
  partition moved when it stopped.

The test fails rather than passing vacuously when the second worker never got a partition
or the first one lost all of them on the join.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter, defaultdict

import pytest

from tests.fixtures.broker import override
from tests.fixtures.reliability import Customers, PacedStream, read_final, record_id

pytestmark = pytest.mark.slow

CUSTOMERS = 24
LIMIT = 3000  # the stream never sends more than this (2 min at its pace), whatever the timings
AFTER_STOP = 3 * CUSTOMERS  # messages sent once the first worker has exited
DECISION = re.compile(r"event=case_(opened|merged) message_id=(\S+) case_id=(\S+) account=(\S+)")
WORKER_ENV = {"PIPELINE_TRANSCRIBE_PRELOAD": "false"}


def decisions(lines: list[str]) -> list[tuple[str, str, str, str]]:
    """(action, message id, case id, account) of each dedup decision a worker logged."""
    return [m.groups() for line in lines if (m := DECISION.search(line))]  # type: ignore[misc]


async def until(check, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


async def test_worker_joins_then_first_stops_nothing_lost_cases_kept(
        settings, kafka_io, pipeline_process, pipeline_cli, tmp_path):
    await kafka_io.create_topics()
    customers = Customers(CUSTOMERS)
    directory = tmp_path / "employees.yaml"
    directory.write_text(customers.directory_yaml())
    imported = pipeline_cli(["directory", "import", str(directory)], settings)
    assert imported.returncode == 0, imported.stderr

    first = pipeline_process(["worker"], override(
        settings, worker={"data_dir": str(tmp_path / "worker-1")}), env=WORKER_ENV)
    stream = PacedStream(kafka_io, customers, LIMIT, pace=0.2)  # 25 messages a second
    streaming = asyncio.create_task(stream.run())

    # Every account has its case, opened by the first worker alone.
    await until(lambda: len(decisions(first.lines)) >= 2 * CUSTOMERS,
                "the first worker decides on two messages of each account")
    second = await asyncio.to_thread(
        pipeline_process, ["worker"],
        override(settings, worker={"data_dir": str(tmp_path / "worker-2")}), env=WORKER_ENV)
    await until(lambda: decisions(second.lines), "the second worker decides on a message")
    sent_when_both_worked = len(stream.sent)
    both_seen_at = len(first.lines)

    def both_keep_working() -> bool:
        """Both decide on messages sent after the second was seen working: the partitions
        are split between them (not all taken by the newcomer)."""
        later = {e.id for e in stream.sent[sent_when_both_worked:]}
        return all(any(m in later for _, m, _, _ in decisions(lines))
                   for lines in (first.lines[both_seen_at:], second.lines))

    await until(both_keep_working, "both workers decide on messages sent after the join")
    second_before_stop = len(second.lines)
    code = await asyncio.to_thread(first.stop, signal.SIGTERM)
    assert code == 0, "the first worker did not stop cleanly"
    sent_after_stop = len(stream.sent)
    last = stream.stop_after(AFTER_STOP)
    assert last - sent_after_stop == AFTER_STOP, f"stream limit {LIMIT} reached too early"
    await streaming
    sent = {e.id: e for e in stream.sent}

    records = await read_final(kafka_io, lambda ids: sent.keys() <= ids, timeout=90)
    ids = Counter(record_id(r) for r in records)
    missing = sent.keys() - ids.keys()
    assert not missing, f"{len(missing)} of {len(sent)} messages lost (e.g. {sorted(missing)[:3]})"
    assert set(ids) == set(sent), "ids that were never sent appeared on the final topics"

    routed = [r for r in records if r.topic == "cases.routed"]
    assert len({record_id(r) for r in routed}) == len(sent), (
        "every follow-up is a routed case: none should be quarantined or dead-lettered: "
        f"{Counter(r.topic for r in records)}")
    copies: dict[str, list[dict]] = defaultdict(list)
    for r in routed:
        copies[r.value["id"]].append(r.value)
    for message_id, values in copies.items():  # a duplicate is a re-delivery of the same message
        assert {(v["source_id"], v["text"], v["case"]["case_id"]) for v in values} == {
            (sent[message_id].source_id, sent[message_id].text, values[0]["case"]["case_id"])}
        account = sent[message_id].sender.app_identity.account_id
        assert all(v["identity"]["account_id"] == account  # found in the imported directory
                   and v["identity"]["employee_id"] == f"EMP-{account}" for v in values)

    # Dedup state survived: one case per account, opened by the first worker at the start.
    opened_by_first = {account: case for action, _, case, account in decisions(first.lines)
                       if action == "opened"}
    assert set(opened_by_first) == {customers.account(k) for k in range(CUSTOMERS)}
    for message_id, values in copies.items():
        account = sent[message_id].sender.app_identity.account_id
        assert values[0]["case"]["case_id"] == opened_by_first[account], (
            f"message {sent[message_id].source_id} of {account} opened or joined "
            f"{values[0]['case']['case_id']}, not the account's case {opened_by_first[account]}")
    after_stop = stream.sent[sent_after_stop:]
    assert len(after_stop) == AFTER_STOP
    for envelope in after_stop:
        case = copies[envelope.id][0]["case"]
        assert case["action"] == "merged" and case["matched_by"] != "redelivery", case

    # Partitions really moved: the second worker took some at the join, and the accounts
    # the first worker kept after the join were merged by the second after the stop.
    later = {e.id for e in stream.sent[sent_when_both_worked:sent_after_stop]}
    kept_by_first = {account for _, m, _, account in decisions(first.lines[both_seen_at:])
                     if m in later}
    taken_by_second = {account for _, m, _, account
                       in decisions(second.lines[:second_before_stop]) if m in later}
    assert kept_by_first and taken_by_second
    assert not kept_by_first & taken_by_second, "one account's partition on both workers"
    merged_by_second_after_stop = {
        account for action, m, _, account in decisions(second.lines)
        if m in {e.id for e in after_stop} and action == "merged"}
    assert kept_by_first <= merged_by_second_after_stop
    print(f"sent {len(sent)}; first worker kept {len(kept_by_first)} accounts after the "
          f"join, second took {len(taken_by_second)}; "
          f"{sum(n - 1 for n in ids.values())} re-delivered duplicate(s), "
          f"at most {max(ids.values())} copies of one message")
