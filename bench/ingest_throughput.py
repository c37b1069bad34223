"""Ingest throughput vs a raw aiokafka consume→produce loop, same broker, same run.

Ingest runs inside the intake hop (with identify and the spam filter after it);
``messages.normalized`` is tapped so that its output can be counted like the raw loop's.

    .venv/bin/python bench/ingest_throughput.py [--messages 20000] [--rounds 2]

Both sides read the same pre-produced envelopes from their own copy of ``inbound.raw`` and
write to a topic; throughput is measured the same way for both, from the broker timestamps
of the first and last output records, so process start-up and group joins are excluded
(start-up is reported separately). The figure that matters is the ratio: these machines
are noisy, absolute numbers are not comparable between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.envelope import Channel, Envelope, Sender  # noqa: E402
from pipeline.kafka import ensure_topics  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402

TEXTS = [
    "Bonjour, la commande MH38 est bloquée depuis ce matin, pouvez-vous regarder ?",
    "Hello, the label printer stopped working after the last update of Hangers Pro.",
    "Où configurer la TVA pour la boutique de Lyon ?",
    "Facture FA-2026-0042 : le montant ne correspond pas au contrat CT-1187.",
]


def envelopes(n: int) -> list[Envelope]:
    now = datetime.now(UTC)
    return [
        Envelope(channel=Channel.WHATSAPP, source_id=f"SM{i:08d}", received_at=now,
                 sender=Sender(phone=f"+336{i % 500:08d}", whatsapp_id=f"whatsapp:+336{i % 500:08d}"),
                 text=TEXTS[i % len(TEXTS)])
        for i in range(n)
    ]


async def produce(bootstrap: str, topic: str, items: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=262_144, enable_idempotence=False)
    await producer.start()
    try:
        for env in items:
            await producer.send(topic, env.to_bytes(), key=env.sender_key.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def output_rate(bootstrap: str, topic: str, n: int, timeout: float,
                      on_progress: Callable[[int], None] | None = None) -> tuple[float, float]:
    """(messages/s between first and last output record, seconds until all were there).

    ``on_progress(records so far)`` is called after each fetch."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    stamps: list[int] = []
    started = time.monotonic()
    try:
        while len(stamps) < n and time.monotonic() - started < timeout:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                stamps.extend(r.timestamp for r in records)
            if on_progress is not None and batch:
                on_progress(len(stamps))
    finally:
        await consumer.stop()
    if len(stamps) < n:
        raise SystemExit(f"only {len(stamps)}/{n} records on {topic} after {timeout} s")
    span = (max(stamps) - min(stamps)) / 1000
    return (n - 1) / span if span > 0 else float("inf"), time.monotonic() - started


async def raw_pass_through(bootstrap: str, source: str, sink: str, n: int) -> None:
    """The practical limit: consume, produce the same bytes, commit; no parsing."""
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=f"raw-{source}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10,
                                max_batch_size=262_144, enable_idempotence=False)
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while done < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batch.values():
                for r in records:
                    await producer.send(sink, r.value, key=r.key)
                    done += 1
            await producer.flush()
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


def start_worker(bootstrap: str, prefix: str, workdir: Path) -> tuple[subprocess.Popen[str], float]:
    settings = load_settings(None, kafka={"bootstrap": bootstrap, "embedded": True, "topic_prefix": prefix,
                                          "partitions": 4},
                             worker={"app_id": f"bench-{prefix.rstrip('.')}",
                                     "data_dir": str(workdir / "worker"),
                                     "taps": ["messages.normalized"]},
                             blobs={"url": str(workdir / "blobs")}, log={"level": "info"})
    config = workdir / f"{prefix}yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True)
                                     | {"chat": {"enabled": False}}))
    time.monotonic()
    # BENCH_WORKER_PREFIX="py-spy record -o prof.svg --" profiles the worker.
    prefix = os.environ.get("BENCH_WORKER_PREFIX", "").split()
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "pipeline", "--config", str(config), "worker",
                             "--stages", "ingest"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    for line in proc.stdout:
        if "event=worker_ready" in line:
            # Keep reading its log, or a full pipe would block the worker.
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, float(re.search(r"seconds_to_ready=([\d.]+)", line).group(1))
    raise SystemExit("worker exited before it was ready")


async def one_round(bootstrap: str, n: int, workdir: Path, rnd: int) -> dict[str, float]:
    items = envelopes(n)
    raw_prefix, pipe_prefix = f"raw{rnd}.", f"pipe{rnd}."
    for prefix in (raw_prefix, pipe_prefix):
        await ensure_topics(load_settings(None, kafka={"bootstrap": bootstrap, "embedded": True,
                                                       "topic_prefix": prefix}).kafka)
        await produce(bootstrap, f"{prefix}inbound.raw", items)

    raw_task = asyncio.create_task(raw_pass_through(
        bootstrap, f"{raw_prefix}inbound.raw", f"{raw_prefix}messages.normalized", n))
    raw_rate, _ = await output_rate(bootstrap, f"{raw_prefix}messages.normalized", n, 300)
    await raw_task

    proc, ready = start_worker(bootstrap, pipe_prefix, workdir)
    try:
        pipe_rate, _ = await output_rate(bootstrap, f"{pipe_prefix}messages.normalized", n, 600)
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy (BENCH_WORKER_PREFIX) writes its file on SIGINT
        proc.wait(60)
    return {"raw": raw_rate, "pipeline": pipe_rate, "ratio": pipe_rate / raw_rate,
            "ready_s": ready}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        results = [await one_round(broker.bootstrap, args.messages, Path(tmp), r)
                   for r in range(args.rounds)]
    print(f"{'round':>5} {'raw msg/s':>10} {'ingest msg/s':>13} {'ratio':>6} {'ready s':>8}")
    for i, r in enumerate(results):
        print(f"{i:>5} {r['raw']:>10.0f} {r['pipeline']:>13.0f} {r['ratio']:>6.2f} "
              f"{r['ready_s']:>8.2f}")
    print(f"median ratio ingest/raw = {statistics.median(r['ratio'] for r in results):.2f} "
          f"({args.messages} messages, {len(results)} rounds); "
          f"median worker start-to-ready = {statistics.median(r['ready_s'] for r in results):.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
