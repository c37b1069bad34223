"""Worker memory: resident set size of one worker while it processes 100,000 messages.

    .venv/bin/python bench/worker_memory.py [--messages 100000] [--accounts 20000]
        [--sample-every 10000] [--stages ingest,transcribe,identify,spamfilter,dedup,route]

One ``pipeline worker`` process (all six stages by default) against the embedded broker.
Chat and WhatsApp envelopes are produced to ``inbound.raw`` in chunks of ``--sample-every``;
after each chunk has come out (on ``cases.routed``, ``messages.spam`` or the dead-letter
topic) the worker's VmRSS and VmHWM are read from ``/proc/<pid>/status``, so the table shows
growth against messages processed. Total time and messages/s are reported too.

The traffic is a day-by-day mix over ``--days`` of simulated time (``received_at``), from
``--accounts`` customer accounts (1-3 users each, signed in on the chat, so identified):
- ``--merge-share`` (default 0.2) are follow-ups: the same user writes again about the same
  order a few minutes later (dedup merges them into the open case);
- ``--unidentified-share`` (default 0.1) are WhatsApp messages from numbers in no directory
  (the spam filter quarantines them as unidentified);
- the rest open a new case each, about a new order, invoice or contract.
Every message has its own source id, so ingest's idempotency table gets one key per message,
dedup's open-case table one entry per account with its open cases, route's table the routing
of each case.

What grows, measured and inferred: after the run the bench reads the three tables'
changelog topics, keeps the last value per key (what the worker's in-memory store holds) and
measures with tracemalloc how much Python heap the same keys and decoded values take in this
process. That is an estimate of each table's share of the RSS (the worker holds the same
structures: faust's memory store keeps decoded keys and values in a dict), not a
measurement inside the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest_throughput import produce  # noqa: E402
from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.envelope import AppIdentity, Channel, Envelope, Sender  # noqa: E402
from pipeline.kafka import ensure_topics  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402

PREFIX = "mem."
TABLES = ("ingest-seen", "dedup-open-cases", "route-cases")

NEW_SUBJECTS = [
    "Bonjour, la commande {ref} est bloquée en préparation depuis ce matin, pouvez-vous "
    "regarder ?",
    "La facture FAC-{num} ne correspond pas au devis, le montant de la TVA est faux.",
    "Hello, order {ref} was never delivered and the tracking page shows an error.",
    "Le contrat CTR-{num} devait être renouvelé le mois dernier, je n'ai rien reçu.",
    "Sur l'iPad la caisse se ferme dès que j'ouvre la commande {ref}, c'est urgent.",
    "Hi, the invoice INV-{num} was charged twice on our card, can you refund one?",
    "Impossible d'imprimer le ticket de la commande {ref}, l'imprimante reste muette.",
    "Bonjour, comment ajouter un deuxième utilisateur au compte ? Merci d'avance.",
]
FOLLOW_UPS = [
    "Toujours bloqué pour la commande {ref}, vous avez pu regarder ?",
    "Any news about order {ref}? Our customer is waiting.",
    "Je relance pour la commande {ref}, merci de me tenir au courant.",
]
UNKNOWN = [
    "Bonjour, je voudrais un devis pour trois terminaux de caisse.",
    "Hello, do you ship to Belgium? How much for the starter pack?",
    "Bonjour, vous êtes ouverts le samedi ?",
]


@dataclass
class Traffic:
    """The generated envelopes and what each is expected to become."""

    envelopes: list[Envelope]
    kinds: Counter[str] = field(default_factory=Counter)


def make_traffic(n: int, accounts: int, merge_share: float, unidentified_share: float,
                 days: float, seed: int) -> Traffic:
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=days)
    step = timedelta(days=days) / n
    recent: list[tuple[str, str, str]] = []  # (account, user, ref) of recent new subjects
    traffic = Traffic([])
    for i in range(n):
        at = start + step * i
        draw = rng.random()
        if draw < unidentified_share:
            traffic.kinds["unidentified"] += 1
            number = f"+336{rng.randrange(10**8):08d}"
            traffic.envelopes.append(Envelope(
                channel=Channel.WHATSAPP, source_id=f"SM{i:032x}", received_at=at,
                sender=Sender(phone=number, whatsapp_id=f"whatsapp:{number}"),
                text=rng.choice(UNKNOWN)))
            continue
        if draw < unidentified_share + merge_share and recent:
            traffic.kinds["follow-up"] += 1
            account, user, ref = rng.choice(recent[-50:])
            text = rng.choice(FOLLOW_UPS).format(ref=ref)
        else:
            traffic.kinds["new subject"] += 1
            account = f"ACC-{rng.randrange(accounts):05d}"
            user = f"{account}-U{rng.randrange(1, 4)}"
            ref = f"MH{rng.randrange(10, 99)}{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}"
            text = rng.choice(NEW_SUBJECTS).format(ref=ref, num=f"2026-{rng.randrange(10**4):04d}")
            recent.append((account, user, ref))
            del recent[:-200]
        traffic.envelopes.append(Envelope(
            channel=Channel.CHAT, source_id=f"chat-{i:08d}", received_at=at,
            sender=Sender(app_identity=AppIdentity(user_id=user, account_id=account)),
            text=text))
    return traffic


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def _drain(proc: subprocess.Popen[str], log_file: Path | None) -> None:
    assert proc.stdout is not None
    if log_file is None:
        for _ in proc.stdout:
            pass
        return
    with log_file.open("w") as out:
        for line in proc.stdout:
            out.write(line)


def start_worker(bootstrap: str, app_id: str, stages: str, workdir: Path,
                 log_level: str, log_file: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
           "PIPELINE_KAFKA_EMBEDDED": "true",
           "PIPELINE_KAFKA_TOPIC_PREFIX": PREFIX, "PIPELINE_WORKER_APP_ID": app_id,
           "PIPELINE_WORKER_DATA_DIR": str(workdir / "worker"),
           "PIPELINE_BLOBS_URL": str(workdir / "blobs"), "PIPELINE_TRANSCRIBE_PRELOAD": "false",
           "PIPELINE_LOG_LEVEL": log_level}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "--stages", stages],
                            cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        tail = (tail + [line])[-30:]
        if "event=worker_ready" in line:
            # Keep reading its log, or a full pipe would block the worker.
            threading.Thread(target=_drain, args=(proc, log_file), daemon=True).start()
            return proc
    raise SystemExit("worker exited before it was ready:\n" + "".join(tail))


class Outcomes:
    """Distinct message ids seen on the final topics, and what became of them."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None,
                                         auto_offset_reset="earliest",
                                         enable_auto_commit=False, max_poll_records=10_000)
        self.ids: set[str] = set()
        self.outcomes: Counter[str] = Counter()
        self.records = 0
        self.last_new = time.monotonic()

    async def poll(self) -> None:
        batch = await self.consumer.getmany(timeout_ms=200, max_records=10_000)
        for records in batch.values():
            for r in records:
                self.records += 1
                body = json.loads(r.value)
                message_id = body.get("id") or body.get("message_id")
                if message_id in self.ids:
                    continue
                self.ids.add(message_id)
                self.last_new = time.monotonic()
                if r.topic.endswith("cases.routed"):
                    self.outcomes[f"routed, case {body['case']['action']}"] += 1
                elif r.topic.endswith("messages.spam"):
                    self.outcomes[f"quarantined, {body['spam']['reason']}"] += 1
                else:
                    self.outcomes["dead-lettered"] += 1

    async def wait_for(self, target: int, timeout: float, settle: float = 10.0) -> None:
        """Until ``target`` ids were seen, or nothing new came for ``settle`` s with at most 2 %
        missing (a few ids never show up on the final topics: see docs/benchmarks.md)."""
        deadline = time.monotonic() + timeout
        while len(self.ids) < target and time.monotonic() < deadline:
            await self.poll()
            if (target - len(self.ids) <= 0.02 * target
                    and time.monotonic() - self.last_new > settle):
                return
        if len(self.ids) < 0.98 * target:
            raise SystemExit(f"only {len(self.ids)} of {target} messages came out "
                             f"within {timeout:.0f} s")


def _decode(data: bytes | None) -> object:
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return data.decode("utf-8", "replace") if data is not None else None


async def table_footprint(bootstrap: str, app_id: str, table: str) -> tuple[int, int, int]:
    """(keys, changelog records, Python heap bytes of the last value per key)."""
    topic = f"{app_id}-{table}-changelog"
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    latest: dict[bytes, bytes | None] = {}
    records = 0
    try:
        partitions = list(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 5:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for items in batch.values():
                for r in items:
                    records += 1
                    latest[r.key] = r.value
                idle_since = time.monotonic()
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
    finally:
        await consumer.stop()
    # Rebuild what faust's memory store holds (decoded key → decoded value) and weigh it.
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = {_decode(k): _decode(v) for k, v in latest.items() if v is not None}
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return len(store), records, size


async def run(args: argparse.Namespace) -> None:
    traffic = make_traffic(args.messages, args.accounts, args.merge_share,
                           args.unidentified_share, args.days, args.seed)
    print(f"{args.messages} messages from {args.accounts} accounts: "
          + ", ".join(f"{k} {v}" for k, v in sorted(traffic.kinds.items())), flush=True)
    app_id = f"bench-memory-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap
        await ensure_topics(load_settings(None, kafka={"bootstrap": bootstrap, "embedded": True,
                                                       "topic_prefix": PREFIX}).kafka)
        worker = start_worker(bootstrap, app_id, args.stages, Path(tmp), args.log_level,
                              args.worker_log)
        broker_pid = broker._proc.pid if broker._proc else None  # noqa: SLF001 - bench only
        outcomes = Outcomes(bootstrap, [f"{PREFIX}cases.routed", f"{PREFIX}messages.spam",
                                        f"{PREFIX}pipeline.deadletter"])
        await outcomes.consumer.start()
        rows: list[tuple[int, int, int, int | None, float]] = []
        try:
            rss, hwm = rss_kib(worker.pid)
            rows.append((0, rss, hwm, rss_kib(broker_pid)[0] if broker_pid else None, 0.0))
            started = time.monotonic()
            busy = 0.0  # from each chunk's first produce to its last new output
            for done in range(0, args.messages, args.sample_every):
                chunk = traffic.envelopes[done: done + args.sample_every]
                chunk_start = time.monotonic()
                await produce(bootstrap, f"{PREFIX}inbound.raw", chunk)
                await outcomes.wait_for(done + len(chunk), args.chunk_timeout)
                busy += outcomes.last_new - chunk_start
                rss, hwm = rss_kib(worker.pid)
                rows.append((len(outcomes.ids), rss, hwm,
                             rss_kib(broker_pid)[0] if broker_pid else None,
                             time.monotonic() - started))
                r = rows[-1]
                print(f"  {r[0]:>8} out  RSS {r[1] / 1024:7.1f} MiB  peak {r[2] / 1024:7.1f} MiB  "
                      f"{r[4]:6.0f} s", flush=True)
            elapsed = time.monotonic() - started
            footprints = {t: await table_footprint(bootstrap, app_id, t) for t in TABLES
                          if t.split("-")[0] in args.stages}
        finally:
            await outcomes.consumer.stop()
            worker.terminate()
            worker.wait(60)

    print(f"\nstages={args.stages} accounts={args.accounts} log={args.log_level}")
    print(f"{'messages out':>12} {'worker RSS MiB':>15} {'peak MiB':>9} {'Δ per 10k':>10} "
          f"{'broker RSS MiB':>15} {'elapsed s':>10}")
    for i, (out, rss, hwm, brk, at) in enumerate(rows):
        delta = "" if i == 0 else (
            f"{(rss - rows[i - 1][1]) / 1024 * 10_000 / max(1, out - rows[i - 1][0]):+10.1f}")
        print(f"{out:12d} {rss / 1024:15.1f} {hwm / 1024:9.1f} {delta:>10} "
              f"{(brk or 0) / 1024:15.1f} {at:10.0f}")
    total = len(outcomes.ids)
    print(f"\n{total} of {args.messages} messages out ({args.messages - total} never seen on "
          f"the final topics); {elapsed:.0f} s in all, {busy:.0f} s from each chunk's produce "
          f"to its last output: {total / busy:.0f} msg/s (chunks of {args.sample_every})")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.outcomes.items()))
          + f"; {outcomes.records - total} duplicate records")
    growth = (rows[-1][1] - rows[1][1]) / 1024
    print(f"worker RSS growth from the first to the last sample: {growth:+.1f} MiB "
          f"({growth * 1024 / max(1, total - rows[1][0]) * 1024:.0f} bytes per message)")
    print("\ntables, rebuilt from their changelogs in this process (estimate of the worker's "
          "share):")
    for table, (keys, records, size) in footprints.items():
        print(f"  {table:18} {keys:8d} keys  {records:8d} changelog records  "
              f"{size / 2**20:7.1f} MiB as Python objects ({size / max(1, keys):.0f} B/key)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--sample-every", type=int, default=10_000,
                        help="messages per produced chunk, and between RSS samples")
    parser.add_argument("--merge-share", type=float, default=0.2)
    parser.add_argument("--unidentified-share", type=float, default=0.1)
    parser.add_argument("--days", type=float, default=10.0,
                        help="simulated time the messages are spread over (received_at)")
    parser.add_argument("--stages", default="ingest,transcribe,identify,spamfilter,dedup,route")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"])
    parser.add_argument("--chunk-timeout", type=float, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker-log", type=Path, help="write the worker's log there")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
