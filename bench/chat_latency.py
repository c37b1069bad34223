"""Chat latency from outside: signed messages POSTed at a steady rate to `pipeline run`, time
until each one's record is on ``cases.routed``.

    .venv/bin/python bench/chat_latency.py [--rates 20,100,200] [--seconds 15] [--json FILE]

``pipeline run`` starts as a user would start it (embedded broker, chat connector, every
stage) in a temporary directory, and a directory of 200 accounts (one employee each) is
imported into it. For each rate the bench posts distinct signed chat messages from those 200
accounts on a fixed schedule (open loop: it never waits for an answer before the next
send), then waits for stragglers up to ``--grace`` seconds. Latency is the record's broker
timestamp on ``cases.routed`` minus the wall clock just before its POST. Every acknowledged
message must end on ``cases.routed``, ``messages.spam`` or ``pipeline.deadletter``; any other
is lost. CPU is user + system time of the ``pipeline run`` process and its descendants,
except the embedded broker (tansu), from the first POST of a rate to its last outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.worker_memory import NEW_SUBJECTS  # noqa: E402
from connectors.chat.contract import sign  # noqa: E402
from pipeline.kafka import follow  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402
from pipeline.topics import Topic  # noqa: E402

SECRET = "chat-latency-bench-secret"
ACCOUNTS = 200
# Only templates with a reference, so that every message's text is distinct.
SUBJECTS = [t for t in NEW_SUBJECTS if "{" in t]
CLK_TCK = os.sysconf("SC_CLK_TCK")


class PipelineRun:
    """``pipeline run`` in its own directory; its log is read on a thread (a full pipe would
    block it) and its readiness lines are waited for."""

    def __init__(self, workdir: Path, worker: dict[str, object] | None = None) -> None:
        config = workdir / "pipeline.yaml"
        config.write_text(yaml.safe_dump({
            "kafka": {"bootstrap": None}, "http": {"port": 0}, "chat": {"secret": SECRET},
            "worker": {"data_dir": str(workdir / "worker"), **(worker or {})},
            "blobs": {"url": str(workdir / "blobs")},
            "route": {"rules_path": str(ROOT / "config/routing.yaml")},
            "spamfilter": {"policy_path": str(ROOT / "config/spam.yaml")}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
        self.env = {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
                    "PIPELINE_TRANSCRIBE_PRELOAD": "false"}
        self.command = [sys.executable, "-m", "pipeline", "--config", str(config)]
        self.workdir = workdir
        self.lines: deque[str] = deque(maxlen=2000)
        self.counted: set[str] = set()  # "name (pid)" of the processes whose CPU is summed
        self.proc = subprocess.Popen([*self.command, "run"], cwd=workdir, env=self.env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"pipeline run: no {text!r}:\n" + "\n".join(list(self.lines)[-30:]))

    def field(self, event: str, key: str) -> str:
        return self.wait_for(event).split(f"{key}=", 1)[1].split()[0]

    def import_directory(self, bootstrap: str) -> None:
        accounts = [{"id": f"ACC-{a:04d}", "name": f"Boutique {a}", "tier": "premium",
                     "country": "FR", "language": "fr",
                     "employees": [{"id": f"EMP-{a:04d}", "name": f"Client {a}",
                                    "emails": [f"contact{a}@boutique{a}.fr"]}]}
                    for a in range(ACCOUNTS)]
        path = self.workdir / "employees.yaml"
        path.write_text(yaml.safe_dump({"accounts": accounts}))
        subprocess.run([*self.command, "directory", "import", str(path)], cwd=self.workdir,
                       env={**self.env, "PIPELINE_KAFKA_BOOTSTRAP": bootstrap}, check=True,
                       capture_output=True, timeout=120)

    def cpu_seconds(self) -> float:
        """User + system time of the process and its live descendants, tansu excluded."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        total, todo = 0.0, [self.proc.pid]
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, []))
            try:
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
                if os.path.basename(argv0).startswith(b"tansu"):
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
            name = "pipeline run" if pid == self.proc.pid else os.path.basename(argv0).decode()
            self.counted.add(f"{name} (pid {pid})")
        return total

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Outcomes:
    """What the follower saw, by chat message id (dead letters: by envelope id)."""

    routed_ms: dict[str, int] = field(default_factory=dict)
    # when each stage handled a routed message (its trace), epoch ms, by chat message id
    marks_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    spam: set[str] = field(default_factory=set)
    dead_ids: set[str] = field(default_factory=set)
    task: asyncio.Task[None] | None = None

    def start(self, bootstrap: str) -> None:
        self.task = asyncio.create_task(self._follow(bootstrap))

    def stopped(self) -> bool:
        """True when the follower has ended (it only ends on an error, raised here)."""
        if self.task is not None and self.task.done():
            self.task.result()
            return True
        return False

    async def _follow(self, bootstrap: str) -> None:
        kafka = load_settings(None, kafka={"bootstrap": bootstrap, "embedded": True}).kafka
        async for record in follow(kafka, [Topic.ROUTED, Topic.SPAM, Topic.DEADLETTER]):
            value = json.loads(record.value)
            if record.topic == Topic.ROUTED:
                self.routed_ms.setdefault(value["source_id"], record.timestamp)
                self.marks_ms.setdefault(value["source_id"], {
                    mark["stage"]: datetime.fromisoformat(mark["at"]).timestamp() * 1000
                    for mark in value.get("trace", [])})
            elif record.topic == Topic.SPAM:
                self.spam.add(value["source_id"])
            elif value.get("message_id"):
                self.dead_ids.add(value["message_id"])


@dataclass
class RateResult:
    rate: int
    sent_per_s: float = 0.0  # achieved: below ``rate`` when the client fell behind schedule
    posted: int = 0
    acked: int = 0
    routed: int = 0
    spam: int = 0
    dead_lettered: int = 0
    lost: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    cpu_ms_per_message: float = 0.0
    window_s: float = 0.0
    # median ms of each stretch: POST → ingest ran, ingest → route ran, ... → cases.routed
    stretches_ms: dict[str, float] = field(default_factory=dict)
    # the same medians over the slowest 2 % of messages: which stretch makes the tail
    tail_stretches_ms: dict[str, float] = field(default_factory=dict)


def stretches(sent_ms: float, marks: dict[str, float], routed_ms: float) -> dict[str, float]:
    """Where one message's time went, from its POST to its record on cases.routed."""
    points = [("POST", sent_ms), *((stage, marks[stage]) for stage in
              ("ingest", "identify", "spamfilter", "dedup", "route") if stage in marks),
              ("cases.routed", routed_ms)]
    return {f"{a}→{b}": tb - ta for (a, ta), (b, tb) in zip(points, points[1:], strict=False)}


def chat_body(message_id: str, i: int) -> bytes:
    account = i % ACCOUNTS
    text = SUBJECTS[i % len(SUBJECTS)].format(ref=f"MH{1000 + i}", num=f"2026-{i:05d}")
    return json.dumps({
        "message_id": message_id, "conversation_id": f"conv-{account}-{i // ACCOUNTS}",
        "sent_at": "2026-12-02T10:15:00+01:00", "text": text, "surface": "selfcare",
        "user": {"id": f"EMP-{account:04d}", "account_id": f"ACC-{account:04d}",
                 "email": f"contact{account}@boutique{account}.fr", "name": f"Client {account}"},
    }).encode()


async def post_at_rate(session: aiohttp.ClientSession, url: str, prefix: str, rate: int,
                       seconds: float, first: int) -> tuple[dict[str, float], dict[str, str]]:
    """Post rate × seconds messages on schedule; (wall time before each POST, envelope id of
    each acknowledged one), by message id."""
    sent_at: dict[str, float] = {}
    acked: dict[str, str] = {}

    async def post(message_id: str, body: bytes) -> None:
        headers = {"X-Pipeline-Signature": sign(body, SECRET), "Content-Type": "application/json"}
        sent_at[message_id] = time.time()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                if response.status == 202:
                    acked[message_id] = (await response.json())["id"]
        except aiohttp.ClientError:
            pass  # counted as posted, not acknowledged

    loop = asyncio.get_running_loop()
    start, tasks = loop.time(), []
    for n in range(int(rate * seconds)):
        i = first + n
        message_id, body = f"{prefix}-{i:06d}", chat_body(f"{prefix}-{i:06d}", i)
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(message_id, body)))
    await asyncio.gather(*tasks)
    return sent_at, acked


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def measure(run: PipelineRun, url: str, outcomes: Outcomes, rate: int, seconds: float,
                  grace: float, first: int, prefix: str = "") -> RateResult:
    cpu_before = run.cpu_seconds()
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sent_at, acked = await post_at_rate(session, url, prefix or f"r{rate}", rate,
                                            seconds, first)
    sending = max(sent_at.values()) - min(sent_at.values())

    def pending() -> set[str]:
        return {m for m, envelope_id in acked.items() if m not in outcomes.routed_ms
                and m not in outcomes.spam and envelope_id not in outcomes.dead_ids}

    deadline = time.monotonic() + grace
    while pending() and time.monotonic() < deadline and not outcomes.stopped():
        await asyncio.sleep(0.05)
    window = time.monotonic() - started
    cpu = run.cpu_seconds() - cpu_before
    latencies = sorted(outcomes.routed_ms[m] - sent_at[m] * 1000 for m in acked
                       if m in outcomes.routed_ms)
    parts: dict[str, list[float]] = {}
    tail_parts: dict[str, list[float]] = {}
    slow_from = percentile(latencies, 0.98)
    for m in acked:
        if m in outcomes.routed_ms:
            slow = outcomes.routed_ms[m] - sent_at[m] * 1000 >= slow_from
            for name, ms in stretches(sent_at[m] * 1000, outcomes.marks_ms.get(m, {}),
                                      outcomes.routed_ms[m]).items():
                parts.setdefault(name, []).append(ms)
                if slow:
                    tail_parts.setdefault(name, []).append(ms)
    return RateResult(
        rate=rate, sent_per_s=round((len(sent_at) - 1) / max(sending, 1e-9), 1),
        posted=len(sent_at), acked=len(acked), routed=len(latencies),
        spam=sum(m in outcomes.spam for m in acked),
        dead_lettered=sum(e in outcomes.dead_ids for e in acked.values()), lost=len(pending()),
        p50_ms=round(percentile(latencies, 0.5), 1), p99_ms=round(percentile(latencies, 0.99), 1),
        max_ms=round(latencies[-1], 1) if latencies else float("nan"),
        cpu_ms_per_message=round(cpu * 1000 / max(1, len(sent_at)), 2), window_s=round(window, 1),
        stretches_ms={k: round(statistics.median(v), 1) for k, v in parts.items()},
        tail_stretches_ms={k: round(statistics.median(v), 1) for k, v in tail_parts.items()})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="20,100,200", help="messages per second, in order")
    parser.add_argument("--seconds", type=float, default=15.0, help="posting time per rate")
    parser.add_argument("--grace", type=float, default=120.0,
                        help="how long to wait for stragglers after a rate's last POST")
    parser.add_argument("--json", type=Path, help="also write the results to FILE")
    parser.add_argument("--worker", action="append", default=[], metavar="KEY=VALUE",
                        help="a worker setting for the run (YAML value), e.g. "
                             "batch_within_seconds=0.005; repeatable")
    args = parser.parse_args()
    worker = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.worker)}
    rates = [int(r) for r in args.rates.split(",")]
    results: list[RateResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        run = PipelineRun(Path(tmp), worker)
        try:
            bootstrap = run.field("event=broker_started", "bootstrap")
            url = run.field("event=endpoint method=POST", "url")
            run.wait_for("event=worker_ready")
            run.import_directory(bootstrap)
            outcomes = Outcomes()
            outcomes.start(bootstrap)
            # Warm-up, not reported: the directory loads and the tables start on first use.
            warm = await measure(run, url, outcomes, 10, 2, args.grace, 0, "warm")
            if warm.routed < warm.posted:
                raise SystemExit(f"warm-up: only {warm.routed} of {warm.posted} routed: {warm}")
            first = 20
            for rate in rates:
                results.append(await measure(run, url, outcomes, rate, args.seconds, args.grace,
                                             first))
                first += int(rate * args.seconds)
            assert outcomes.task is not None
            outcomes.task.cancel()
        finally:
            run.stop()
    print(f"pipeline run (embedded broker, chat connector, all stages), {ACCOUNTS} accounts, "
          f"{args.seconds:g} s per rate, latency = POST → broker timestamp on cases.routed"
          + (f"; worker settings {worker}" if worker else ""))
    print("CPU = user + system of `pipeline run` and its descendants except the tansu broker, "
          "first POST to last outcome, per message posted; counted: "
          + ", ".join(sorted(run.counted)))
    print(f"{'rate/s':>6} {'sent/s':>6} {'posted':>6} {'acked':>6} {'routed':>6} {'spam':>5} {'dead':>5} "
          f"{'lost':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'CPU ms/msg':>10}")
    for r in results:
        print(f"{r.rate:6d} {r.sent_per_s:6.1f} {r.posted:6d} {r.acked:6d} {r.routed:6d} {r.spam:5d} "
              f"{r.dead_lettered:5d} {r.lost:5d} {r.p50_ms:8.0f} {r.p99_ms:8.0f} {r.max_ms:8.0f} "
              f"{r.cpu_ms_per_message:10.2f}")
    print("median ms per stretch (stage marks are the worker's clock, the same machine's):")
    for r in results:
        print(f"{r.rate:6d}  " + "  ".join(f"{k} {v:.0f}" for k, v in r.stretches_ms.items()))
    print("the same over the slowest 2 % (the tail):")
    for r in results:
        print(f"{r.rate:6d}  " + "  ".join(f"{k} {v:.0f}" for k, v in r.tail_stretches_ms.items()))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
