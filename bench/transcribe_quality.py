"""Transcription quality on the voice test set, per decoding condition and audio format.

    nice -n 10 .venv/bin/python bench/transcribe_quality.py --limit 12 \\
        --conditions default,beam1,beam1_detect,beam1_t0,beam1_vad_off,beam1_loose
    .venv/bin/python bench/transcribe_quality.py --table var/bench-voice/quality*.jsonl

The set is ``bench/data/voice/utterances.yaml`` rendered by ``bench/voice_set.py`` (8 kHz
PCM WAV and µ-law as phone calls, 16 kHz OGG/Opus as WhatsApp notes). ``--limit N`` takes
N speech utterances (French and English interleaved, 5 French to 1 English) plus the silent
ones. Each clip goes through the worker's own path (``Transcriber.transcribe_bytes`` then
``core.summarise``), the account language being the utterance's language unless the
condition detects it. Every condition runs on a clip before the next clip (a shared
machine's load drifts; this spreads it evenly over the conditions). One row per clip and
condition is appended to ``--out`` (JSON lines) as it is done, so a run cut short still has
its figures; ``--table FILE`` prints the table of a file.

Per condition and format:
- ``WER``: word error rate against the reference (case, accents and punctuation folded);
- ``words``: share of the reference's words found in the transcript;
- ``kw``: keyword recall (the 2-3 words routing needs);
- ``RTF``: mean processing time / audio duration; ``p95 s``: 95th percentile time per clip;
- ``loops``: clips where a repetition loop was cut or a window hit the token cap;
- ``empty``: speech clips with no text (``spch?``: of those, how many were flagged
  ``speech_not_transcribed`` instead of silence); ``lang!``: wrong language;
- ``silent ok``: silent clips that came out ``no_speech``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.voice_set import DEFAULT_CACHE, FORMATS, Utterance, load_set, render  # noqa: E402
from pipeline.envelope import Attachment, AttachmentKind  # noqa: E402
from pipeline.transcribe import core  # noqa: E402
from pipeline.transcribe.config import TranscribeConfig  # noqa: E402
from pipeline.transcribe.engine import Transcriber  # noqa: E402

# faster-whisper's own fallback list (what `temperature` defaults to).
FW_FALLBACK = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
# Each condition: (settings changed from the shipped defaults, account language given?).
# The ablations change one knob at a time on greedy search (beam 1), the cheapest base;
# "default" is what ships (beam 5, chosen from these runs: docs/transcribe.md).
GREEDY: dict[str, Any] = {"beam_size": 1}
CONDITIONS: dict[str, tuple[dict[str, Any], bool]] = {
    "default": ({}, True),
    "beam1": (GREEDY, True),
    "beam1_detect": (GREEDY, False),  # [fr, en] detected, no account language
    "beam1_t0": ({**GREEDY, "temperatures": [0.0]}, True),
    "beam1_fallback6": ({**GREEDY, "temperatures": FW_FALLBACK, "best_of": 5}, True),
    "beam1_vad_off": ({**GREEDY, "vad": False}, True),
    "beam1_cond_prev": ({**GREEDY, "condition_on_previous_text": True}, True),
    "beam1_no_cap": ({**GREEDY, "max_new_tokens": None}, True),
    # condition_on_previous_text + no token cap + faster-whisper's fallback, forced language
    "beam1_loose": ({**GREEDY, "condition_on_previous_text": True, "max_new_tokens": None,
                     "temperatures": FW_FALLBACK, "best_of": 5}, True),
    # Whisper's own no-speech filter off: every window the VAD kept is decoded.
    "keep_windows": ({"no_speech_threshold": None}, True),
    # The defaults before issue 17: detect any language, beam 5, faster-whisper's fallback,
    # conditioned, no cap, no time bound.
    "before": ({"languages": [], "beam_size": 5, "temperatures": FW_FALLBACK, "best_of": 5,
                "condition_on_previous_text": True, "max_new_tokens": None,
                "max_realtime_factor": 1000.0}, False),
}
# Names of the first two runs (2026-12-02), when greedy search was the candidate default.
RENAMED = {"chosen": "beam1", "beam5": "default", "detect": "beam1_detect", "t0": "beam1_t0",
           "fallback6": "beam1_fallback6", "vad_off": "beam1_vad_off",
           "cond_prev": "beam1_cond_prev", "no_cap": "beam1_no_cap", "loose": "beam1_loose"}

_PUNCT = re.compile(r"[^\w\s']+|'")


def words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return _PUNCT.sub(" ", folded).split()


def wer(ref: list[str], hyp: list[str]) -> float:
    """Word-level Levenshtein distance / reference length."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / max(len(ref), 1)


def pick(utterances: list[Utterance], limit: int | None) -> list[Utterance]:
    speech = [u for u in utterances if not u.silent]
    silent = [u for u in utterances if u.silent]
    if limit is None:
        return speech + silent
    fr = [u for u in speech if u.lang == "fr"]
    en = [u for u in speech if u.lang != "fr"]
    chosen: list[Utterance] = []
    while len(chosen) < limit and (fr or en):
        take = en if (len(chosen) % 6 == 5 and en) or not fr else fr
        chosen.append(take.pop(0))
    return chosen + silent


def measure(transcriber: Transcriber, clip_bytes: bytes, utt: Utterance,
            account: bool) -> dict[str, Any]:
    started = time.perf_counter()
    recognition = transcriber.transcribe_bytes(clip_bytes, utt.lang if account else None)
    seconds = time.perf_counter() - started
    attachment = Attachment(kind=AttachmentKind.AUDIO, uri="blob://bench")
    transcript = core.summarise(recognition, attachment, "bench",
                                transcriber.config.min_speech_seconds)
    ref, hyp = words(utt.text), words(transcript.text)
    hyp_set = set(hyp)
    keywords = [words(k)[0] for k in utt.keywords]
    return {
        "seconds": round(seconds, 3), "duration": round(recognition.duration_s, 3),
        "text": transcript.text, "language": transcript.language,
        # The segments before core.cut_loops: lets a change to the loop cutter be compared on
        # the same decoding.
        "raw_text": " ".join(s.text.strip() for s in recognition.segments if s.text.strip()),
        "no_speech": transcript.no_speech, "flags": transcript.flags,
        "confidence": transcript.confidence, "speech_s": transcript.speech_s,
        "wer": round(wer(ref, hyp), 4) if ref else None,
        "words": round(sum(w in hyp_set for w in ref) / len(ref), 4) if ref else None,
        "kw": round(sum(k in hyp_set for k in keywords) / len(keywords), 4) if keywords else None,
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def table(rows: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("schema", 1) == 1:  # rows of the first runs: conditions named then
            row["condition"] = RENAMED.get(row["condition"], row["condition"])
        groups[(row["condition"], row["format"])].append(row)
    lines = ["| condition | format | clips | WER | words | kw | RTF | p95 s | loops | empty "
             "(spch?) | lang! | silent ok | conf<0.35 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {name: i for i, name in enumerate(CONDITIONS)}
    for (cond, fmt), group in sorted(groups.items(),
                                     key=lambda kv: (order.get(kv[0][0], 99),
                                                     FORMATS.index(kv[0][1]))):
        speech = [r for r in group if not r["silent"]]
        silent = [r for r in group if r["silent"]]
        empty = [r for r in speech if not r["text"]]
        flagged = [r for r in empty if "speech_not_transcribed" in r["flags"]]
        loops = [r for r in speech if {"loop_cut", "token_cap"} & set(r["flags"])]
        wrong_lang = [r for r in speech if r["text"] and r["language"] != r["lang"]]
        low = [r for r in speech if r["text"] and (r["confidence"] or 0) < 0.35]
        rtf = statistics.mean(r["seconds"] / r["duration"] for r in group)
        lines.append(
            f"| {cond} | {fmt} | {len(speech)}+{len(silent)} "
            f"| {statistics.mean(r['wer'] for r in speech):.2f} "
            f"| {statistics.mean(r['words'] for r in speech):.2f} "
            f"| {statistics.mean(r['kw'] for r in speech):.2f} "
            f"| {rtf:.2f} | {pct([r['seconds'] for r in group], 0.95):.1f} "
            f"| {len(loops)} | {len(empty)} ({len(flagged)}) | {len(wrong_lang)} "
            f"| {sum(r['no_speech'] for r in silent)}/{len(silent)} | {len(low)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="speech utterances to use")
    parser.add_argument("--conditions", default="default,beam1,beam1_detect,beam1_t0,"
                        "beam1_vad_off,beam1_loose",
                        help=f"comma-separated, among: {', '.join(CONDITIONS)}")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="bundled:base",
                        help="bundled:base, a CTranslate2 model directory, or a name")
    parser.add_argument("--cache-dir", default=str(ROOT / "var" / "models"))
    parser.add_argument("--audio-cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--out", default=str(DEFAULT_CACHE / "quality.jsonl"))
    parser.add_argument("--table", metavar="JSONL", nargs="+",
                        help="only print the table of these runs' rows")
    args = parser.parse_args()
    if args.table:
        print(table([json.loads(line) for name in args.table
                     for line in Path(name).read_text().splitlines()]))
        return 0
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        parser.error(f"unknown conditions {unknown}; known: {', '.join(CONDITIONS)}")
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    clips = render(pick(load_set(), args.limit), formats, Path(args.audio_cache))
    base = TranscribeConfig(model=args.model, model_cache_dir=args.cache_dir,
                            device=args.device, cpu_threads=args.threads)
    transcriber = Transcriber(base)
    transcriber.load()
    transcriber.transcribe_bytes(clips[0].bytes(), "fr")  # warm-up, not counted
    print(f"model={args.model} device={transcriber.device}/{transcriber.compute_type} "
          f"threads={args.threads} clips={len(clips)} conditions={conditions}", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    # Clip-major order: every condition runs on a clip before the next clip, so the load of
    # a shared machine (which drifts over minutes) weighs on all conditions alike.
    configs = {cond: (base.model_copy(update=CONDITIONS[cond][0]), CONDITIONS[cond][1])
               for cond in conditions}
    spent = dict.fromkeys(conditions, 0.0)
    with out.open("a") as sink:
        for clip in clips:
            utt = clip.utterance
            data = clip.bytes()
            for cond, (config, account) in configs.items():
                transcriber.config = config
                row = {"schema": 2, "condition": cond, "format": clip.format, "id": utt.id,
                       "lang": utt.lang, "silent": utt.silent, "model": args.model,
                       "device": transcriber.device,
                       **measure(transcriber, data, utt, account)}
                spent[cond] += row["seconds"]
                rows.append(row)
                sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                sink.flush()
    print("seconds per condition: " + ", ".join(f"{c} {t:.0f}" for c, t in spent.items()),
          file=sys.stderr)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
