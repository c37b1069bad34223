"""Latency of one hop (inbound.raw → intake: ingest → identify → spamfilter → messages.spam,
the sender being unknown), one message at a time.

    .venv/bin/python bench/hop_latency.py [--messages 20]

Runs the intake worker twice in the same run: with faust's hard-coded consumer fetch wait
(1500 ms) and with ours (``worker.fetch_max_wait_ms``, default 100), and prints p50/max
latency and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.envelope import Channel, Envelope, Sender  # noqa: E402
from pipeline.kafka import ensure_topics  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402


async def hop_latencies(bootstrap: str, fetch_wait_ms: int, n: int) -> list[float]:
    prefix = f"lat{fetch_wait_ms}."
    await ensure_topics(load_settings(None, kafka={"bootstrap": bootstrap, "embedded": True,
                                                   "topic_prefix": prefix}).kafka)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
           "PIPELINE_KAFKA_EMBEDDED": "true",
           "PIPELINE_KAFKA_TOPIC_PREFIX": prefix, "PIPELINE_WORKER_APP_ID": f"lat-{fetch_wait_ms}",
           "PIPELINE_WORKER_FETCH_MAX_WAIT_MS": str(fetch_wait_ms)}
    worker = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "--stages", "ingest"],
                              cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    assert worker.stdout is not None
    for line in worker.stdout:
        if "event=worker_ready" in line:
            break
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    consumer = AIOKafkaConsumer(f"{prefix}messages.spam", bootstrap_servers=bootstrap,
                                auto_offset_reset="latest", fetch_max_wait_ms=20)
    await producer.start()
    await consumer.start()
    await consumer.seek_to_end()
    latencies = []
    try:
        for i in range(n):
            env_ = Envelope(channel=Channel.CHAT, source_id=f"lat-{i}",
                            received_at=datetime.now(UTC), sender=Sender(email=f"c{i}@shop.fr"),
                            text="Bonjour, où configurer la TVA ?")
            started = time.monotonic()
            await producer.send_and_wait(f"{prefix}inbound.raw", env_.to_bytes(),
                                         key=env_.sender_key.encode())
            while env_.id.encode() not in (await consumer.getone()).value:
                pass
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()
        await consumer.stop()
        worker.terminate()
        worker.wait(30)
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    with EmbeddedBroker() as broker:
        default = await hop_latencies(broker.bootstrap, 1500, args.messages)
        ours = await hop_latencies(broker.bootstrap, 100, args.messages)
    for name, values in (("faust fetch wait 1500 ms", default), ("fetch wait 100 ms", ours)):
        print(f"{name:26} p50 {statistics.median(values) * 1000:7.1f} ms   "
              f"max {max(values) * 1000:7.1f} ms")
    print(f"p50 ratio 100 ms / 1500 ms = {statistics.median(ours) / statistics.median(default):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
