"""What each hop costs: worker CPU per message, hop by hop, against a raw aiokafka
consume→produce pass-through of the same messages, same broker, same run.

    .venv/bin/python bench/stage_costs.py [--messages 3000]

The whole pipeline runs once (one worker, every hop) over signed-in chat messages, which
fills the hops' input topics. Then each hop a text message crosses (intake: ingest →
identify → spamfilter; cases: dedup → route) runs alone in its own worker on a copy of its
input topic, one after the other, and its CPU (user + system, from ready until its last
output) is divided by the number of messages. CPU is used rather than wall time
because the development machines' cores are shared: wall-clock rates move 2x between runs,
CPU per message much less. The raw pass-through's CPU is taken in a child process the same
way.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest_throughput import output_rate, produce  # noqa: E402
from bench.pipeline_throughput import (  # noqa: E402
    chat_messages,
    cpu_seconds,
    start_pipeline_worker,
)
from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.kafka import ensure_topics  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402

# hop: (input topic, output topic), in pipeline order (a text message never crosses
# transcription)
STAGES = {
    "intake": ("inbound.raw", "messages.accepted"),
    "cases": ("messages.accepted", "cases.routed"),
}

RAW_CHILD = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from bench.ingest_throughput import raw_pass_through
started = time.process_time()
import uvloop
uvloop.run(raw_pass_through({bootstrap!r}, {source!r}, {sink!r}, {n}))
print(time.process_time() - started)
"""


async def copy_topic(bootstrap: str, source: str, sink: str, n: int) -> None:
    """The first ``n`` records of ``source`` onto ``sink``, same keys and partitions."""
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=262_144, enable_idempotence=False)
    await consumer.start()
    await producer.start()
    copied = 0
    try:
        while copied < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for r in records:
                    await producer.send(sink, r.value, key=r.key, partition=tp.partition)
                    copied += 1
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()


async def worker_cpu(bootstrap: str, prefix: str, workdir: Path, output: str, n: int,
                     stages: str | None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a worker from ready until ``n`` records on ``output``."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"PIPELINE_WORKER_STAGES": f'["{stages}"]'} if stages else {}
    worker = start_pipeline_worker(bootstrap, prefix, workdir, env)
    cpu_ready, ready_at = cpu_seconds(worker.pid), time.monotonic()
    try:
        await output_rate(bootstrap, f"{prefix}{output}", n, 900)
        return cpu_seconds(worker.pid) - cpu_ready, time.monotonic() - ready_at
    finally:
        worker.terminate()
        worker.wait(60)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    n = args.messages
    items = chat_messages(n)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap
        prefixes = ["raw.", "pipe.", *(f"{s}." for s in STAGES)]
        for prefix in prefixes:
            await ensure_topics(load_settings(None, kafka={"bootstrap": bootstrap, "embedded": True,
                                                           "topic_prefix": prefix}).kafka)
        for prefix in ("raw.", "pipe."):
            await produce(bootstrap, f"{prefix}inbound.raw", items)

        child = subprocess.run(
            [sys.executable, "-c", RAW_CHILD.format(root=str(ROOT), bootstrap=bootstrap,
                                                    source="raw.inbound.raw",
                                                    sink="raw.cases.routed", n=n)],
            capture_output=True, text=True, check=True)
        raw_cpu = float(child.stdout.strip().splitlines()[-1])

        whole_cpu, whole_wall = await worker_cpu(bootstrap, "pipe.", Path(tmp) / "pipe",
                                                 "cases.routed", n, None)
        costs: dict[str, float] = {}
        for stage, (source, output) in STAGES.items():
            await copy_topic(bootstrap, f"pipe.{source}", f"{stage}.{source}", n)
            cpu, _ = await worker_cpu(bootstrap, f"{stage}.", Path(tmp) / stage, output, n,
                                      stage)
            costs[stage] = cpu
            print(f"  {stage:<11} {cpu / n * 1e6:7.0f} µs CPU per message (hop alone)",
                  flush=True)

    per = {stage: cpu / n * 1e6 for stage, cpu in costs.items()}
    raw = raw_cpu / n * 1e6
    print(f"\n{'':<24}{'µs CPU/msg':>11}{'× raw':>8}")
    print(f"{'raw aiokafka pass-through':<24}{raw:>11.0f}{1:>8.1f}")
    for stage, us in per.items():
        print(f"{'  ' + stage:<24}{us:>11.0f}{us / raw:>8.1f}")
    print(f"{'sum of hops alone':<24}{sum(per.values()):>11.0f}{sum(per.values()) / raw:>8.1f}")
    whole = whole_cpu / n * 1e6
    print(f"{'whole pipeline, 1 worker':<24}{whole:>11.0f}{whole / raw:>8.1f}   "
          f"(ready → last routed: {whole_wall:.1f} s wall, {n / whole_wall:.0f} msg/s)")


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
