"""Does a consumer following the tail of a topic on the embedded broker see every record
the broker acknowledged? (A check of the broker, not of the pipeline.)

    .venv/bin/python bench/broker_tail_reads.py [--seconds 25] [--fetch-max-wait-ms 100]

Producers write one record at a time with acks=all to three 2-partition topics while one
consumer per topic follows the tail; afterwards a fresh consumer reads every topic from the
beginning. Reported: acknowledged records the followers never saw, and whether the fresh
read finds them. A stage worker is such a follower: a record it never sees stays on its
topic unprocessed until the worker re-reads it (restart or rebalance), which is how the
rare stalls of the dedup/route and broker-outage tests look.
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--fetch-max-wait-ms", type=int, default=100)
    args = parser.parse_args()
    with EmbeddedBroker() as broker:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(t, 2, 1) for t in TOPICS])
        await admin.close()
        acked: dict[bytes, float] = {}
        seen: dict[bytes, float] = {}
        followers = [asyncio.create_task(follow(broker.bootstrap, t, seen,
                                                args.fetch_max_wait_ms)) for t in TOPICS]
        await asyncio.gather(*(produce(broker.bootstrap, f"p{i}", args.seconds, acked)
                               for i in range(args.producers)))
        await asyncio.sleep(10)  # followers get 10 s more to catch up
        for task in followers:
            task.cancel()
        stored = await read_all(broker.bootstrap)
    skipped = sorted(v for v in acked if v not in seen)
    print(f"acknowledged records           {len(acked)}")
    print(f"never seen by a tail follower  {len(skipped)} {[v.decode() for v in skipped[:5]]}")
    print(f"  of those, found by a fresh read from the beginning: "
          f"{sum(v in stored for v in skipped)}")
    print(f"acknowledged but not stored    {sum(v not in stored for v in acked)}")


if __name__ == "__main__":
    asyncio.run(main())
