"""identify + spamfilter through a real worker on the embedded broker.

Run: /work/venv/bin/python bench/identify_spam_broker.py [N]
A backlog of N envelopes (half known senders) waits on inbound.raw; a worker with
``--stages identify,spamfilter`` (the intake hop, ingest included) starts; we time from its
readiness to the last output on messages.accepted + messages.spam. Then the same with
messages produced one by one while the worker runs (live), where read-your-writes costs
one ListOffsets per message; each mode with identify.read_your_writes on and off, in the
same run.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.envelope import Channel, Envelope, Sender  # noqa: E402
from pipeline.identify.directory import Account, DirectoryEmployee  # noqa: E402
from pipeline.kafka import ensure_topics  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402

TEXTS = ["Où configurer la TVA ?", "Bonjour, la commande MH38 est bloquée", "qsdfqsdfqsdf",
         "Hi, order X45Q has been stuck since this morning"]


async def produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]] | None = None,
                  *, live: tuple[int, str] | None = None, pace: float = 0.0) -> None:
    """Send ``records``; or, ``live=(n, tag)``, n envelopes one by one, stamped when sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                linger_ms=5 if live is None else 0)
    await producer.start()
    try:
        if live is not None:
            for i in range(live[0]):
                key, value = envelope(i, live[1])
                await producer.send_and_wait(topic, value, key=key.encode())
                await asyncio.sleep(pace)
        for key, value in records or []:
            await producer.send(topic, value, key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def collect(bootstrap: str, prefix: str, n: int,
                  timeout: float = 300) -> tuple[float, list[float]]:
    """Wall time of the last output, and each output's latency since ``received_at``."""
    consumer = AIOKafkaConsumer(f"{prefix}messages.accepted", f"{prefix}messages.spam",
                                bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    latencies: list[float] = []
    last = time.monotonic()
    deadline = time.monotonic() + timeout
    try:
        while len(latencies) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    sent = Envelope.from_bytes(r.value).received_at.timestamp()
                    latencies.append(r.timestamp / 1000 - sent)
                    last = time.monotonic()
    finally:
        await consumer.stop()
    return last, latencies


def envelope(i: int, tag: str) -> tuple[str, bytes]:
    phone = f"+336{10_000_000 + (i % 2000):08d}"  # employees 0..999 known, the rest unknown
    env = Envelope(channel=Channel.WHATSAPP, source_id=f"{tag}-{i}",
                   received_at=datetime.now(UTC),
                   sender=Sender(phone=phone, whatsapp_id=f"whatsapp:{phone}"),
                   text=TEXTS[i % len(TEXTS)])
    return env.sender_key, env.to_bytes()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run_case(bootstrap: str, tmp: Path, n: int, live: bool,
             ryw: bool) -> tuple[float, list[float]]:
    prefix = f"b{uuid.uuid4().hex[:8]}."
    settings = load_settings(None, kafka={"bootstrap": bootstrap, "embedded": True, "topic_prefix": prefix,
                                          "partitions": 2},
                             worker={"app_id": f"bench-{prefix.rstrip('.')}",
                                     "data_dir": str(tmp / prefix)},
                             identify={"read_your_writes": ryw}, blobs={"url": str(tmp)})
    asyncio.run(ensure_topics(settings.kafka))
    directory = []
    for i in range(1000):
        employee = DirectoryEmployee(id=f"E{i}", account=Account(id=f"ACC-{i // 5}"),
                                     phones=[f"+336{10_000_000 + i:08d}"])
        directory.append((employee.id, employee.model_dump_json().encode()))
    asyncio.run(produce(bootstrap, f"{prefix}directory.employees", directory))
    if not live:
        records = [envelope(i, prefix) for i in range(n)]
        asyncio.run(produce(bootstrap, f"{prefix}inbound.raw", records))
    config = tmp / f"{prefix}yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True)))
    worker = subprocess.Popen([sys.executable, "-m", "pipeline", "--config", str(config),
                               "--log-level", "warn", "worker", "--stages",
                               "identify,spamfilter"], cwd=ROOT, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(8)  # bench only: let the worker join its group (tests wait on a log line)

        async def go() -> tuple[float, list[float]]:
            started = time.monotonic()
            counting = asyncio.create_task(collect(bootstrap, prefix, n))
            if live:
                await produce(bootstrap, f"{prefix}inbound.raw", live=(n, prefix),
                              pace=0.002)
            last, latencies = await counting
            return last - started, latencies

        return asyncio.run(go())
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_path=None) as broker:
        for live in (False, True):
            for ryw in (True, False):
                seconds, latencies = run_case(broker.bootstrap, Path(tmp), n, live, ryw)
                if live:
                    print(f"live, one by one   read_your_writes={str(ryw):5}: "
                          f"{len(latencies)}/{n} out, latency p50 "
                          f"{percentile(latencies, 0.5):.1f} ms p99 "
                          f"{percentile(latencies, 0.99):.1f} ms", flush=True)
                else:
                    print(f"backlog            read_your_writes={str(ryw):5}: "
                          f"{len(latencies)}/{n} out in {seconds:.2f} s = "
                          f"{n / seconds:,.0f} msg/s", flush=True)


if __name__ == "__main__":
    main()
