"""Voice-note latency: a ~10 s WhatsApp voice note from the signed webhook POST to its queue.

    .venv/bin/python bench/voice_note_latency.py [--runs 5] [--seconds 10] [--threads 2]

One ``pipeline run`` process (the Twilio connectors and all six stages, bundled Whisper base
on CPU) against the embedded broker; a local server speaking Twilio's REST contract
(``tests/fixtures/twilio_cloud.py``) serves the media URL. A directory is imported first, so
every sender is a registered employee: each voice note comes from another customer account,
so it is identified, passes the spam filter and OPENS a case (never merges) and is routed.

Voice notes are sent one at a time. For each, measured from just before the webhook POST:
- ``ack``: the webhook's 200 (media downloaded and stored, envelope acknowledged by Kafka);
- ``routed``: broker timestamp of the record on ``cases.routed``;
- ``queue``: broker timestamp of the record on ``queue.<name>`` (the one an agent reads);
- ``stt hop``: the ``transcribe`` mark minus the ``ingest`` mark in the envelope's trace
  (queueing to the audio agent, blob read, transcription, inside the worker).
The first voice note is reported apart (cold): without ``--preload`` the worker loads the
model on the first recording, as ``transcribe.preload: false`` does; with ``--preload`` the
worker loads it at start-up and the bench waits for that before sending.

In the same run, just before each note is sent (the pipeline idle), the same recording is
transcribed directly with faster-whisper in this process (same model, device, threads and
beam as the worker), so the pipeline's overhead over transcription alone is visible:
overhead = queue latency - direct transcription. ``text hops`` is the ``route`` mark minus
the ``transcribe`` mark (identify, spamfilter, dedup, route after the transcript exists).

The first record written to ``cases.routed`` was sometimes not readable back from the embedded
broker (its fetch returned no records although the high watermark counted it); the queue
topic always had it. ``routed`` shows ``nan`` then: the figures are taken on the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.transcribe_rtf import SENTENCES as RTF_SENTENCES  # noqa: E402
from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.kafka import ensure_topics  # noqa: E402
from pipeline.settings import Settings, load_settings  # noqa: E402
from pipeline.transcribe.config import TranscribeConfig  # noqa: E402
from pipeline.transcribe.engine import Transcriber  # noqa: E402
from tests.fixtures.processes import PipelineProcess  # noqa: E402
from tests.fixtures.twilio_cloud import ACCOUNT_SID, AUTH_TOKEN, serve_cloud  # noqa: E402
from tests.integration.twilio_helpers import OUR_NUMBER, PUBLIC, whatsapp_form  # noqa: E402

PREFIX = "vn."
# The five sentences of bench/transcribe_rtf.py, and one about a payment terminal.
SENTENCES = [
    *RTF_SENTENCES,
    "Le terminal de paiement affiche une erreur depuis la mise à jour de ce matin.",
]


def phone(i: int) -> str:
    return f"+336123450{i:02d}"


def directory_yaml(n: int) -> str:
    """One account per voice note, each with one employee registered by mobile number."""
    lines = ["accounts:"]
    for i in range(n):
        lines += [f"  - id: ACC-{7000 + i}", f"    name: Boulangerie Numéro {i}",
                  "    tier: standard", "    country: FR", "    language: fr",
                  "    employees:", f"      - id: EMP-{7000 + i}-1",
                  f"        name: Employé {i}", f"        phones: [\"{phone(i)}\"]"]
    return "\n".join(lines) + "\n"


def make_voice_note(i: int, seconds: float, workdir: Path) -> bytes:
    """French speech (espeak-ng), cut to ``seconds`` with sox, OGG/Opus like WhatsApp.

    Each note starts with another sentence, so no two recordings are the same."""
    order = SENTENCES[i % len(SENTENCES):] + SENTENCES[: i % len(SENTENCES)]
    wav = workdir / f"speech-{i}.wav"
    subprocess.run(["espeak-ng", "-v", "fr", "-w", str(wav), " ".join(order * 2)], check=True,
                   capture_output=True, timeout=60)
    cut = workdir / f"note-{i}.wav"
    subprocess.run(["sox", str(wav), str(cut), "trim", "0", f"{seconds:g}"], check=True,
                   capture_output=True, timeout=60)
    ogg = cut.with_suffix(".ogg")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(cut), "-c:a", "libopus",
                    "-b:a", "24k", str(ogg)], check=True, capture_output=True, timeout=60)
    return ogg.read_bytes()


@dataclass
class Run:
    index: int
    ack_s: float
    routed_s: float
    queue_s: float
    stt_hop_s: float
    text_stages_s: float
    direct_s: float
    queue: str
    action: str
    transcript: str


class TopicWatch:
    """Reads a topic from the beginning (no group) and finds records by a field's value."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                         auto_offset_reset="earliest",
                                         enable_auto_commit=False)
        self.topic = topic
        self.seen: dict[str, tuple[int, dict]] = {}  # type: ignore[type-arg]

    async def find(self, field: str, value: str, timeout: float) -> tuple[int, dict]:  # type: ignore[type-arg]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value in self.seen:
                return self.seen[value]
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for r in records:
                    body = json.loads(r.value)
                    self.seen.setdefault(body[field], (r.timestamp, body))
        raise SystemExit(f"no record with {field}={value} on {self.topic} within {timeout:.0f} s")


def trace_gap(envelope: dict, first: str, second: str) -> float:  # type: ignore[type-arg]
    marks = {m["stage"]: datetime.fromisoformat(m["at"]) for m in envelope["trace"]}
    return (marks[second] - marks[first]).total_seconds()


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (with 5 values, p90 is the maximum)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def bench_settings(bootstrap: str, tmp: Path, cloud_url: str, args: argparse.Namespace,
                   notes: int) -> Settings:
    return load_settings(
        None,
        kafka={"bootstrap": bootstrap, "embedded": True, "topic_prefix": PREFIX, "partitions": 2},
        worker={"app_id": f"bench-voice-{uuid.uuid4().hex[:6]}",
                "data_dir": str(tmp / "worker")},
        blobs={"url": str(tmp / "blobs")},
        http={"port": 0},
        chat={"enabled": False},
        transcribe={"model": args.model, "device": "cpu", "cpu_threads": args.threads,
                    "beam_size": args.beam_size, "model_cache_dir": str(args.cache_dir),
                    "preload": args.preload},
        twilio={"enabled": True, "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
                "public_base_url": PUBLIC, "api_base_url": cloud_url,
                "whatsapp_number": OUR_NUMBER, "reconcile_interval_seconds": 0},
    )


def load_direct(args: argparse.Namespace) -> tuple[Transcriber, float]:
    """The worker's model, loaded in this process for the direct measurement."""
    config = TranscribeConfig(model=args.model, device="cpu", cpu_threads=args.threads,
                              beam_size=args.beam_size, model_cache_dir=str(args.cache_dir))
    transcriber = Transcriber(config)
    started = time.perf_counter()
    transcriber.load()
    return transcriber, time.perf_counter() - started


def transcribe_directly(transcriber: Transcriber, data: bytes) -> float:
    started = time.perf_counter()
    transcriber.transcribe_bytes(data)
    return time.perf_counter() - started


async def send_notes(settings: Settings, run: PipelineProcess, cloud,  # type: ignore[no-untyped-def]
                     notes: list[bytes], transcriber: Transcriber, url: str,
                     timeout: float) -> list[Run]:
    bootstrap = settings.kafka.bootstrap
    assert bootstrap is not None
    watches: dict[str, TopicWatch] = {}

    async def watch(topic: str) -> TopicWatch:
        if topic not in watches:
            watches[topic] = TopicWatch(bootstrap, f"{PREFIX}{topic}")
            await watches[topic].consumer.start()
        return watches[topic]

    validator = RequestValidator(AUTH_TOKEN)
    runs: list[Run] = []
    try:
        async with aiohttp.ClientSession() as session:
            for i, data in enumerate(notes):
                # Just before each note, while the pipeline is idle: the same audio directly.
                direct = await asyncio.to_thread(transcribe_directly, transcriber, data)
                sid = "MM" + uuid.uuid4().hex
                media_url = cloud.add_media(sid, "ME" + uuid.uuid4().hex, data, "audio/ogg")
                form = whatsapp_form(sid, "", media=[(media_url, "audio/ogg")], sender=phone(i))
                signature = validator.compute_signature(PUBLIC + "/twilio/whatsapp", form)
                sent = time.time()
                async with session.post(url, data=form,
                                        headers={"X-Twilio-Signature": signature}) as resp:
                    if resp.status != 200:
                        raise SystemExit(f"webhook answered {resp.status}: {await resp.text()}")
                ack = time.time()
                # The message id and its queue come from the worker's log; the times from the
                # records' broker timestamps.
                accepted = await asyncio.to_thread(run.wait_for, f"sid={sid}", 60)
                message_id = accepted.split("message_id=", 1)[1].split()[0]
                routed_line = await asyncio.to_thread(
                    run.wait_for, f"event=case_routed message_id={message_id}", timeout)
                queue = routed_line.split("queue=", 1)[1].split()[0]
                queue_stamp, env = await (await watch(f"queue.{queue}")).find(
                    "id", message_id, 60)
                try:
                    routed_stamp, _ = await (await watch("cases.routed")).find(
                        "id", message_id, 10)
                    routed_s = routed_stamp / 1000 - sent
                except SystemExit:
                    routed_s = math.nan  # see docs/benchmarks.md: not always readable back
                transcript = " ".join(t["text"] for t in env.get("transcripts", []))
                runs.append(Run(i, ack - sent, routed_s, queue_stamp / 1000 - sent,
                                trace_gap(env, "ingest", "transcribe"),
                                trace_gap(env, "transcribe", "route"), direct, queue,
                                env["case"]["action"], transcript))
                r = runs[-1]
                print(f"  note {i}: ack {r.ack_s:.2f} s, queue.{queue} {r.queue_s:.2f} s, "
                      f"cases.routed {r.routed_s:.2f} s, case {r.action}", flush=True)
    finally:
        for w in watches.values():
            await w.consumer.stop()
    return runs


def report(runs: list[Run], load_s: float, args: argparse.Namespace) -> None:
    print(f"\nmodel={args.model} cpu threads={args.threads} beam={args.beam_size} "
          f"preload={args.preload}; direct model load {load_s:.2f} s")
    print(f"{'note':>4} {'kind':>4} {'ack':>6} {'routed':>7} {'queue':>7} {'stt hop':>8} "
          f"{'text hops':>9} {'direct':>7} {'overhead':>9} {'ratio':>6}  case / queue")
    for r in runs:
        kind = "cold" if r.index == 0 else "warm"
        print(f"{r.index:4d} {kind:>4} {r.ack_s:6.2f} {r.routed_s:7.2f} {r.queue_s:7.2f} "
              f"{r.stt_hop_s:8.2f} {r.text_stages_s:9.2f} {r.direct_s:7.2f} {r.queue_s - r.direct_s:9.2f} "
              f"{r.queue_s / r.direct_s:6.2f}  {r.action} / {r.queue}")
    warm = runs[1:]
    if not warm:
        return
    lat = [r.queue_s for r in warm]
    routed = [r.routed_s for r in warm]
    direct = [r.direct_s for r in warm]
    overhead = [r.queue_s - r.direct_s for r in warm]
    print(f"\ncold (first note): queue {runs[0].queue_s:.2f} s, of which stt hop "
          f"{runs[0].stt_hop_s:.2f} s")
    print(f"warm ({len(warm)} notes) webhook → queue.<name>: p50 {pct(lat, .5):.2f} s, "
          f"p90 {pct(lat, .9):.2f} s, max {max(lat):.2f} s")
    routed = [x for x in routed if not math.isnan(x)]
    if routed:
        print(f"warm webhook → cases.routed:             p50 {pct(routed, .5):.2f} s, "
              f"p90 {pct(routed, .9):.2f} s, max {max(routed):.2f} s "
              f"({len(routed)} of {len(warm)} read back)")
    else:
        print("warm webhook → cases.routed: no record could be read back (see the docs)")
    print(f"direct transcription (same audio):       p50 {statistics.median(direct):.2f} s; "
          f"in the worker (ingest → transcribe mark) p50 "
          f"{statistics.median(r.stt_hop_s for r in warm):.2f} s")
    print(f"text stages after transcription (transcribe → route mark): p50 "
          f"{statistics.median(r.text_stages_s for r in warm):.2f} s")
    print(f"pipeline overhead (queue - direct):      p50 {statistics.median(overhead):.2f} s; "
          f"latency / transcription p50 {statistics.median(lat) / statistics.median(direct):.2f}")
    print(f"last transcript: {runs[-1].transcript[:90]!r}")


async def run_pipeline(args: argparse.Namespace, notes: list[bytes], transcriber: Transcriber,
                       tmp: Path) -> list[Run]:
    with EmbeddedBroker() as broker, serve_cloud() as cloud:
        settings = bench_settings(broker.bootstrap, tmp, cloud.url, args, len(notes))
        await ensure_topics(settings.kafka)
        directory = tmp / "employees.yaml"
        directory.write_text(directory_yaml(len(notes)))
        cli = PipelineProcess(["directory", "import", str(directory)], settings, tmp / "cli")
        imported = subprocess.run(cli.args, cwd=ROOT, env=cli.env, text=True,
                                  capture_output=True, timeout=120)
        if imported.returncode != 0:
            raise SystemExit(f"directory import failed: {imported.stderr}")
        run = PipelineProcess(["run"], settings, tmp / "run",
                              env={"PIPELINE_TRANSCRIBE_PRELOAD": str(args.preload).lower()})
        started = time.monotonic()
        run.start(timeout=180)
        line = run.wait_for("/twilio/whatsapp", 30)
        url = line.split("url=", 1)[1].split()[0]
        print(f"pipeline run ready in {time.monotonic() - started:.1f} s; webhook {url}",
              flush=True)
        if args.preload:
            run.wait_for("event=model_loaded", 300)
        try:
            return await send_notes(settings, run, cloud, notes, transcriber, url, args.timeout)
        except BaseException:
            print("\n".join(run.lines[-40:]), file=sys.stderr)
            raise
        finally:
            run.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="warm voice notes (after the cold one)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each voice note")
    parser.add_argument("--threads", type=int, default=2, help="transcribe.cpu_threads")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--model", default="bundled:base")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--preload", action="store_true",
                        help="load the model at worker start (transcribe.preload)")
    parser.add_argument("--timeout", type=float, default=300, help="per note, seconds")
    args = parser.parse_args()
    args.cache_dir = args.cache_dir.resolve()
    for tool in ("espeak-ng", "sox", "ffmpeg"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required (apt-get install {tool})")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        notes = [make_voice_note(i, args.seconds, tmp) for i in range(args.runs + 1)]
        print(f"{len(notes)} voice notes of {args.seconds:g} s, "
              f"{statistics.median(len(n) for n in notes) / 1000:.0f} kB each; "
              f"(direct transcription of each just before it is sent)", flush=True)
        transcriber, load_s = load_direct(args)
        runs = asyncio.run(run_pipeline(args, notes, transcriber, tmp))
    report(runs, load_s, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
