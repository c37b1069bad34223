"""Does a consumer following the tail of a topic on the embedded broker see every record
the broker acknowledged, with and without the offset-gap guard (pipeline/kafka/gapguard.py)?

    .venv/bin/python bench/broker_tail_reads.py [--seconds 25] [--runs 5]

Producers write one record at a time with acks=all to three 2-partition topics while two
consumers per topic follow the tail, side by side in the same run: one guarded (as every
consumer of the project is on the embedded broker), one with the guard disabled (what any
Kafka client does by itself). Afterwards a fresh consumer reads every topic from the
beginning. Reported per run: acknowledged records each follower never saw, whether the fresh
read finds them, and how often the guard held a fetch at a gap. A stage worker is such a
follower: without the guard, a record it never sees stays unprocessed until it re-reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.kafka import gapguard  # noqa: E402

TOPICS = ["tail-0", "tail-1", "tail-2"]


async def follow(bootstrap: str, topic: str, seen: dict[bytes, float], wait_ms: int) -> None:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=wait_ms)
    await consumer.start()
    try:
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    seen.setdefault(r.value, time.monotonic())
    finally:
        await consumer.stop()


async def produce(bootstrap: str, name: str, seconds: float, acked: dict[bytes, float]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks=-1)
    await producer.start()
    try:
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            value = f"{name}-{n}".encode()
            await producer.send_and_wait(TOPICS[n % 3], value, key=str(n % 7).encode())
            acked[value] = time.monotonic()
            n += 1
    finally:
        await producer.stop()


async def read_all(bootstrap: str) -> set[bytes]:
    found: set[bytes] = set()
    for topic in TOPICS:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            while batch := await consumer.getmany(timeout_ms=2000, max_records=10_000):
                for records in batch.values():
                    found.update(r.value for r in records)
        finally:
            await consumer.stop()
    return found


async def one_run(seconds: float, producers: int, wait_ms: int) -> tuple[int, int, int, int]:
    with EmbeddedBroker() as broker:
        gapguard.configure(True, patience=5.0)
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(t, 2, 1) for t in TOPICS])
        await admin.close()
        acked: dict[bytes, float] = {}
        guarded: dict[bytes, float] = {}
        unguarded: dict[bytes, float] = {}
        followers = [asyncio.create_task(follow(broker.bootstrap, t, guarded, wait_ms))
                     for t in TOPICS]
        with gapguard.disabled():  # the fetch tasks of these consumers inherit the context
            followers += [asyncio.create_task(follow(broker.bootstrap, t, unguarded, wait_ms))
                          for t in TOPICS]
        held_before = gapguard.stats().held
        await asyncio.gather(*(produce(broker.bootstrap, f"p{i}", seconds, acked)
                               for i in range(producers)))
        await asyncio.sleep(10)  # followers get 10 s more to catch up
        for task in followers:
            task.cancel()
        stored = await read_all(broker.bootstrap)
    missed_guarded = [v for v in acked if v not in guarded]
    missed_unguarded = [v for v in acked if v not in unguarded]
    lost = sum(v not in stored for v in acked)
    print(f"acknowledged {len(acked):6}  never seen: guarded {len(missed_guarded)}, "
          f"unguarded {len(missed_unguarded)} (found by a fresh read: "
          f"{sum(v in stored for v in missed_unguarded)})  fetches held at a gap: "
          f"{gapguard.stats().held - held_before}  acknowledged but not stored: {lost}",
          flush=True)
    return len(acked), len(missed_guarded), len(missed_unguarded), lost


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--fetch-max-wait-ms", type=int, default=100)
    args = parser.parse_args()
    totals = [0, 0, 0, 0]
    for _ in range(args.runs):
        for i, n in enumerate(await one_run(args.seconds, args.producers,
                                            args.fetch_max_wait_ms)):
            totals[i] += n
    print(f"total over {args.runs} run(s): acknowledged {totals[0]}, never seen by the "
          f"guarded followers {totals[1]}, by the unguarded {totals[2]}")


if __name__ == "__main__":
    asyncio.run(main())
