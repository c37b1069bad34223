"""The whole pipeline (intake: ingest → identify → spamfilter; cases: dedup → route) against
a raw aiokafka consume→produce pass-through of the same messages, same broker, same run.

    .venv/bin/python bench/pipeline_throughput.py [--messages 5000]

Signed-in chat messages (identified by their app identity, so they pass the spam filter)
from many accounts are pre-produced to ``inbound.raw``; one worker runs every hop. Reported:
messages/s between the first and last ``cases.routed`` records (start-up excluded), the
ratio to the raw pass-through, and per-message latency from ``inbound.raw`` to
``cases.routed`` (broker timestamps) for the backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest_throughput import TEXTS, output_rate, produce, raw_pass_through  # noqa: E402
from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.envelope import AppIdentity, Channel, Envelope, Sender  # noqa: E402
from pipeline.kafka import ensure_topics  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402


def chat_messages(n: int, accounts: int = 500) -> list[Envelope]:
    now = datetime.now(UTC)
    return [
        Envelope(channel=Channel.CHAT, source_id=f"chat-{i:07d}", received_at=now,
                 sender=Sender(app_identity=AppIdentity(user_id=f"u{i % accounts}",
                                                        account_id=f"acc-{i % accounts:04d}")),
                 text=TEXTS[i % len(TEXTS)])
        for i in range(n)
    ]


async def timestamps_by_id(bootstrap: str, topic: str, n: int, timeout: float) -> dict[str, int]:
    import json

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: dict[str, int] = {}
    started = time.monotonic()
    try:
        while len(found) < n and time.monotonic() - started < timeout:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                for r in records:
                    record = json.loads(r.value)
                    # envelopes carry "id"; dead letters carry the failed message's "message_id"
                    found.setdefault(record.get("id") or record.get("message_id"), r.timestamp)
    finally:
        await consumer.stop()
    return found


def start_pipeline_worker(bootstrap: str, prefix: str, workdir: Path,  # type: ignore[no-untyped-def]
                          env_overrides: dict[str, str] | None = None):

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
           "PIPELINE_KAFKA_EMBEDDED": "true",
           "PIPELINE_KAFKA_TOPIC_PREFIX": prefix, "PIPELINE_WORKER_APP_ID": f"bench-{prefix}",
           "PIPELINE_WORKER_DATA_DIR": str(workdir / "worker"),
           "PIPELINE_BLOBS_URL": str(workdir / "blobs"), "PIPELINE_TRANSCRIBE_PRELOAD": "false",
           **(env_overrides or {})}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker"], cwd=ROOT, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if "event=worker_ready" in line:
            # Keep reading its log, or a full pipe would block the worker.
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc
    raise SystemExit(f"worker exited before it was ready:\n{''.join(lines[-20:])}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process so far: steadier than wall time on shared cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    beside = Path(sys.executable).parent / "py-spy"  # a dev tool: pip install py-spy
    return subprocess.Popen([str(beside) if beside.exists() else "py-spy", "record",
                             "--pid", str(pid), "--rate", "200", "--threads", "--format", "raw",
                             "--output", str(out),
                             "--nonblocking"], stdout=subprocess.DEVNULL)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--py-spy", metavar="FILE", type=Path,
                        help="record the worker with py-spy while it drains the backlog "
                             "(raw collapsed stacks, one line per thread and stack)")
    args = parser.parse_args()
    n = args.messages
    items = chat_messages(n)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap
        for prefix in ("raw.", "pipe."):
            await ensure_topics(load_settings(None, kafka={"bootstrap": bootstrap, "embedded": True,
                                                           "topic_prefix": prefix}).kafka)
            await produce(bootstrap, f"{prefix}inbound.raw", items)
        raw_task = asyncio.create_task(raw_pass_through(
            bootstrap, "raw.inbound.raw", "raw.cases.routed", n))
        raw_rate, _ = await output_rate(bootstrap, "raw.cases.routed", n, 300)
        await raw_task

        worker = start_pipeline_worker(bootstrap, "pipe.", Path(tmp))
        profiler = start_profiler(worker.pid, args.py_spy) if args.py_spy else None
        # CPU from the first routed record to the last: steadier than wall time on shared
        # cores, and without the worker's start (group join, table recovery).
        cpu_marks: list[tuple[int, float]] = []
        ready_cpu, ready_at = cpu_seconds(worker.pid), time.monotonic()

        def mark_cpu(done: int) -> None:
            if not cpu_marks or done >= n:
                cpu_marks.append((done, cpu_seconds(worker.pid)))

        try:
            pipe_rate, _ = await output_rate(bootstrap, "pipe.cases.routed", n, 900, mark_cpu)
            (first, cpu_first), (last, cpu_last) = cpu_marks[0], cpu_marks[-1]
            cpu_per_message = (cpu_last - cpu_first) / max(1, last - first)
            drain_s, drain_cpu = time.monotonic() - ready_at, cpu_last - ready_cpu
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                profiler.wait(60)
            sent = await timestamps_by_id(bootstrap, "pipe.inbound.raw", n, 60)
            routed = await timestamps_by_id(bootstrap, "pipe.cases.routed", n, 60)
            elsewhere = {topic: await timestamps_by_id(bootstrap, f"pipe.{topic}", n, 5)
                         for topic in ("messages.spam", "pipeline.deadletter")}
        finally:
            worker.terminate()
            worker.wait(60)
    latencies = sorted((routed[i] - sent[i]) / 1000 for i in routed if i in sent)
    print(f"raw pass-through     {raw_rate:8.0f} msg/s")
    print(f"pipeline, all hops   {pipe_rate:8.0f} msg/s   ratio {pipe_rate / raw_rate:.3f}")
    print(f"worker CPU per message {cpu_per_message * 1e6:8.0f} µs (all stages, user + system, "
          "first to last routed record)")
    print(f"ready → all routed     {drain_s:8.1f} s wall, {drain_cpu:.1f} s worker CPU "
          f"({n / drain_s:.0f} msg/s, {drain_cpu / n * 1e6:.0f} µs CPU per message)")
    print(f"backlog latency inbound.raw → cases.routed: p50 "
          f"{statistics.median(latencies):.1f} s, p99 {latencies[int(0.99 * len(latencies))]:.1f} s "
          f"({len(latencies)} of {n} messages)")
    unrouted = set(sent) - set(routed)
    for topic, ids in elsewhere.items():
        print(f"not routed, on {topic}: {len(unrouted & set(ids))}")
    lost = unrouted - set().union(*elsewhere.values())
    print(f"not routed, on no final topic: {len(lost)} {sorted(lost)[:5]}")


if __name__ == "__main__":
    import uvloop

    # The raw pass-through gets the event loop the worker runs on (worker.event_loop).
    uvloop.run(main())
