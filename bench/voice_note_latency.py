"""Voice-note latency: a ~10 s WhatsApp voice note and a ~10 s phone voicemail, from the
signed webhook POST to its queue.

    nice -n 10 .venv/bin/python bench/voice_note_latency.py [--runs 5] [--seconds 10] \
        [--threads 2] [--kinds whatsapp,voicemail] [--preload]

Two kinds of recording, sent alternately: a WhatsApp voice note (16 kHz OGG/Opus, the
``/twilio/whatsapp`` webhook with its media) and a voicemail as Twilio records a call (8 kHz
mono WAV, phone band 300-3400 Hz, the ``/twilio/voice/recording`` callback). Decoding is the
shipped default (``TranscribeConfig()``: see docs/transcribe.md) unless ``--beam-size`` is
given; the worker forces the caller's account language (fr) from the directory, and the
direct measurement does the same.

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
from tests.integration.twilio_helpers import (  # noqa: E402
    LINE,
    OUR_NUMBER,
    PUBLIC,
    recording_form,
    whatsapp_form,
)

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


def make_voicemail(i: int, seconds: float, workdir: Path) -> bytes:
    """French speech at a caller's pace, cut to ``seconds``, as Twilio records a call."""
    order = SENTENCES[i % len(SENTENCES):] + SENTENCES[: i % len(SENTENCES)]
    wav = workdir / f"call-{i}.wav"
    subprocess.run(["espeak-ng", "-v", "fr", "-s", "140", "-w", str(wav), " ".join(order * 2)],
                   check=True, capture_output=True, timeout=60)
    phone_wav = workdir / f"voicemail-{i}.wav"
    subprocess.run(["sox", str(wav), "-r", "8000", "-c", "1", "-b", "16", str(phone_wav),
                    "sinc", "300-3400", "trim", "0", f"{seconds:g}"], check=True,
                   capture_output=True, timeout=60)
    return phone_wav.read_bytes()


@dataclass
class Recording:
    kind: str  # whatsapp, voicemail
    data: bytes


@dataclass
class Run:
    index: int
    kind: str
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
        # The per-message case logs (event=case_routed, with the queue) are at debug level;
        # aiokafka, faust and mode stay at warning whatever the level.
        log={"level": "debug"},
        chat={"enabled": False},
        transcribe={"model": args.model, "device": "cpu", "cpu_threads": args.threads,
                    **decoding(args), "model_cache_dir": str(args.cache_dir),
                    "preload": args.preload},
        twilio={"enabled": True, "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
                "public_base_url": PUBLIC, "api_base_url": cloud_url,
                "whatsapp_number": OUR_NUMBER, "reconcile_interval_seconds": 0},
    )


def decoding(args: argparse.Namespace) -> dict[str, object]:
    """Settings that differ from the shipped decoding defaults (none unless asked)."""
    return {} if args.beam_size is None else {"beam_size": args.beam_size}


def load_direct(args: argparse.Namespace) -> tuple[Transcriber, float]:
    """The worker's model, loaded in this process for the direct measurement."""
    config = TranscribeConfig(model=args.model, device="cpu", cpu_threads=args.threads,
                              model_cache_dir=str(args.cache_dir), **decoding(args))  # type: ignore[arg-type]
    transcriber = Transcriber(config)
    started = time.perf_counter()
    transcriber.load()
    return transcriber, time.perf_counter() - started


def transcribe_directly(transcriber: Transcriber, data: bytes) -> float:
    started = time.perf_counter()
    transcriber.transcribe_bytes(data, "fr")  # the callers' accounts are French
    return time.perf_counter() - started


async def send_notes(settings: Settings, run: PipelineProcess, cloud,  # type: ignore[no-untyped-def]
                     notes: list[Recording], transcriber: Transcriber, url: str,
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
            for i, note in enumerate(notes):
                data = note.data
                # Just before each note, while the pipeline is idle: the same audio directly.
                direct = await asyncio.to_thread(transcribe_directly, transcriber, data)
                if note.kind == "whatsapp":
                    sid = "MM" + uuid.uuid4().hex
                    media_url = cloud.add_media(sid, "ME" + uuid.uuid4().hex, data, "audio/ogg")
                    form = whatsapp_form(sid, "", media=[(media_url, "audio/ogg")],
                                         sender=phone(i))
                    path, found_by = "/twilio/whatsapp", f"sid={sid}"
                else:
                    call_sid, sid = "CA" + uuid.uuid4().hex, "RE" + uuid.uuid4().hex
                    seconds = round(len(data) / 16000)  # 8 kHz, 16-bit mono
                    rec_url = cloud.add_recording(call_sid, sid, data, duration=seconds)
                    form = recording_form(call_sid, sid, rec_url, duration=seconds)
                    path = (f"/twilio/voice/recording?caller=%2B{phone(i)[1:]}"
                            f"&line=%2B{LINE[1:]}")
                    found_by = f"source_id={sid}"
                signature = validator.compute_signature(PUBLIC + path, form)
                target = url.replace("/twilio/whatsapp", path)
                sent = time.time()
                async with session.post(target, data=form,
                                        headers={"X-Twilio-Signature": signature}) as resp:
                    if resp.status not in (200, 204):
                        raise SystemExit(f"webhook answered {resp.status}: {await resp.text()}")
                ack = time.time()
                # The message id and its queue come from the worker's log; the times from the
                # records' broker timestamps.
                accepted = await asyncio.to_thread(run.wait_for, found_by, 60)
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
                runs.append(Run(i, note.kind, ack - sent, routed_s, queue_stamp / 1000 - sent,
                                trace_gap(env, "ingest", "transcribe"),
                                trace_gap(env, "transcribe", "route"), direct, queue,
                                env["case"]["action"], transcript))
                r = runs[-1]
                print(f"  {note.kind} {i}: ack {r.ack_s:.2f} s, queue.{queue} {r.queue_s:.2f} s, "
                      f"cases.routed {r.routed_s:.2f} s, case {r.action}", flush=True)
    finally:
        for w in watches.values():
            await w.consumer.stop()
    return runs


def report(runs: list[Run], load_s: float, args: argparse.Namespace) -> None:
    config = TranscribeConfig(**decoding(args))  # type: ignore[arg-type]
    print(f"\nmodel={args.model} cpu threads={args.threads} beam={config.beam_size} "
          f"temperatures={config.temperatures} max_new_tokens={config.max_new_tokens} "
          f"language=account (fr) preload={args.preload}; direct model load {load_s:.2f} s")
    print(f"{'note':>4} {'kind':>9} {'':>4} {'ack':>6} {'routed':>7} {'queue':>7} "
          f"{'stt hop':>8} {'text hops':>9} {'direct':>7} {'overhead':>9} {'ratio':>6}  "
          f"case / queue")
    for r in runs:
        cold = "cold" if r.index == 0 else "warm"
        print(f"{r.index:4d} {r.kind:>9} {cold:>4} {r.ack_s:6.2f} {r.routed_s:7.2f} "
              f"{r.queue_s:7.2f} {r.stt_hop_s:8.2f} {r.text_stages_s:9.2f} {r.direct_s:7.2f} "
              f"{r.queue_s - r.direct_s:9.2f} {r.queue_s / r.direct_s:6.2f}  "
              f"{r.action} / {r.queue}")
    print(f"\ncold (first note, {runs[0].kind}): queue {runs[0].queue_s:.2f} s, of which stt "
          f"hop {runs[0].stt_hop_s:.2f} s")
    for kind in dict.fromkeys(r.kind for r in runs):
        warm = [r for r in runs[1:] if r.kind == kind]
        if warm:
            summarise_kind(kind, warm)


def summarise_kind(kind: str, warm: list[Run]) -> None:
    lat = [r.queue_s for r in warm]
    routed = [r.routed_s for r in warm if not math.isnan(r.routed_s)]
    direct = [r.direct_s for r in warm]
    overhead = [r.queue_s - r.direct_s for r in warm]
    print(f"\n{kind}: {len(warm)} warm")
    print(f"  webhook → queue.<name>: p50 {pct(lat, .5):.2f} s, p90 {pct(lat, .9):.2f} s, "
          f"max {max(lat):.2f} s")
    if routed:
        print(f"  webhook → cases.routed: p50 {pct(routed, .5):.2f} s, p90 "
              f"{pct(routed, .9):.2f} s ({len(routed)} of {len(warm)} read back)")
    print(f"  direct transcription (same audio): p50 {statistics.median(direct):.2f} s; in the "
          f"worker (ingest → transcribe mark) p50 "
          f"{statistics.median(r.stt_hop_s for r in warm):.2f} s")
    print(f"  text stages after transcription: p50 "
          f"{statistics.median(r.text_stages_s for r in warm):.2f} s; pipeline overhead "
          f"(queue - direct) p50 {statistics.median(overhead):.2f} s")
    print(f"  last transcript: {warm[-1].transcript[:90]!r}")


async def run_pipeline(args: argparse.Namespace, notes: list[Recording],
                       transcriber: Transcriber,
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
    parser.add_argument("--beam-size", type=int, default=None,
                        help="override the shipped default decoding's beam")
    parser.add_argument("--kinds", default="whatsapp,voicemail",
                        help="whatsapp, voicemail or both (sent alternately)")
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
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        makers = {"whatsapp": make_voice_note, "voicemail": make_voicemail}
        if not kinds or set(kinds) - set(makers):
            raise SystemExit(f"--kinds: among {', '.join(makers)}")
        # Each kind gets `runs` warm notes; the very first note is the cold one.
        count = args.runs * len(kinds) + 1
        notes = [Recording(kinds[i % len(kinds)],
                           makers[kinds[i % len(kinds)]](i, args.seconds, tmp))
                 for i in range(count)]
        print(f"{len(notes)} recordings of {args.seconds:g} s ({', '.join(kinds)}); "
              f"direct transcription of each just before it is sent", flush=True)
        transcriber, load_s = load_direct(args)
        runs = asyncio.run(run_pipeline(args, notes, transcriber, tmp))
    report(runs, load_s, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
