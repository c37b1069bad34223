"""The voice test set (``bench/data/voice/utterances.yaml``), rendered into a cache directory.

    from bench.voice_set import load_set, render
    clips = render(load_set(), formats=("wav8k", "ulaw8k", "opus16k"))

Each utterance is spoken by espeak-ng (its ``fr`` or ``en`` voice, 22 kHz), optionally mixed
with pink line noise, then rendered as the voice line delivers it:

- ``wav8k``: 8 kHz mono 16-bit PCM WAV, band-limited to 300-3400 Hz (a phone call as Twilio
  records it);
- ``ulaw8k``: the same in G.711 µ-law (a WAV a PBX or an e-mail voicemail may carry);
- ``opus16k``: 16 kHz OGG/Opus at 24 kbit/s (a WhatsApp voice note).

The silent entries are 4-6 s of silence, line hiss, or mains hum with hiss. Files are cached
by a hash of what made them (text, voice, format, noise), so a second run renders nothing;
rendered audio never enters git (default cache ``var/bench-voice``, ignored).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SET_PATH = ROOT / "bench" / "data" / "voice" / "utterances.yaml"
DEFAULT_CACHE = ROOT / "var" / "bench-voice"
FORMATS = ("wav8k", "ulaw8k", "opus16k")
_RENDER_VERSION = "2"


@dataclass(frozen=True)
class Utterance:
    """One recording of the set: reference text and keywords (empty for silent ones)."""

    id: str
    lang: str | None
    text: str
    keywords: tuple[str, ...]
    noise: bool = False
    silent_kind: str | None = None  # silence, hiss, hum
    seconds: float | None = None

    @property
    def silent(self) -> bool:
        return self.silent_kind is not None


@dataclass(frozen=True)
class Clip:
    utterance: Utterance
    format: str
    path: Path

    def bytes(self) -> bytes:
        return self.path.read_bytes()


def load_set(path: Path = SET_PATH) -> list[Utterance]:
    data = yaml.safe_load(path.read_text())
    items = [Utterance(u["id"], u["lang"], " ".join(u["text"].split()),
                       tuple(u["keywords"]), bool(u.get("noise", False)))
             for u in data["utterances"]]
    items += [Utterance(s["id"], None, "", (), silent_kind=s["kind"], seconds=s["seconds"])
              for s in data.get("silent", [])]
    return items


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=120)


def _key(utt: Utterance, fmt: str) -> str:
    raw = "\x1f".join([_RENDER_VERSION, utt.id, utt.lang or "", utt.text, str(utt.noise),
                       utt.silent_kind or "", str(utt.seconds), fmt])
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _source(utt: Utterance, work: Path) -> Path:
    """The 22 kHz source: espeak-ng speech (with noise mixed in), or the silent recording."""
    wide = work / f"{utt.id}-src.wav"
    if utt.silent_kind is not None:
        seconds = str(utt.seconds or 4)
        base = ["sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(wide)]
        if utt.silent_kind == "silence":
            _run(*base, "trim", "0", seconds)
        elif utt.silent_kind == "hiss":
            _run(*base, "synth", seconds, "pinknoise", "vol", "0.01")
        else:
            hum = work / f"{utt.id}-hum.wav"
            _run("sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(hum), "synth", seconds,
                 "sine", "50", "vol", "0.05")
            hiss = work / f"{utt.id}-hiss.wav"
            _run("sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(hiss), "synth",
                 seconds, "pinknoise", "vol", "0.005")
            _run("sox", "-m", str(hum), str(hiss), str(wide))
        return wide
    voice = "fr" if utt.lang == "fr" else "en"
    speech = work / f"{utt.id}-speech.wav"
    # 140 words a minute (espeak-ng default 175): the pace of a message left on a machine.
    _run("espeak-ng", "-v", voice, "-s", "140", "-w", str(speech), utt.text)
    if not utt.noise:
        return speech
    seconds = subprocess.run(["soxi", "-D", str(speech)], check=True, capture_output=True,
                             text=True, timeout=30).stdout.strip()
    noise = work / f"{utt.id}-noise.wav"
    # Street or car noise under a mobile call: pink noise ~20 dB below the voice.
    _run("sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(noise), "synth", seconds,
         "pinknoise", "vol", "0.06")
    _run("sox", "-m", str(speech), str(noise), str(wide))
    return wide


def _encode(src: Path, fmt: str, out: Path) -> None:
    if fmt == "wav8k":
        _run("sox", str(src), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
             str(out), "sinc", "300-3400")
    elif fmt == "ulaw8k":
        _run("sox", str(src), "-r", "8000", "-c", "1", "-e", "u-law", str(out),
             "sinc", "300-3400")
    elif fmt == "opus16k":
        _run("ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-ar", "16000", "-ac", "1",
             "-c:a", "libopus", "-b:a", "24k", str(out))
    else:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


def render(utterances: list[Utterance], formats: tuple[str, ...] = FORMATS,
           cache: Path = DEFAULT_CACHE) -> list[Clip]:
    """Every utterance in every format, rendered once into ``cache``."""
    for tool in ("espeak-ng", "sox", "soxi", "ffmpeg"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed to render the voice set")
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / "work"
    work.mkdir(exist_ok=True)
    clips: list[Clip] = []
    for utt in utterances:
        src: Path | None = None
        for fmt in formats:
            ext = "ogg" if fmt == "opus16k" else "wav"
            out = cache / f"{utt.id}.{fmt}.{_key(utt, fmt)}.{ext}"
            if not out.is_file():
                src = src or _source(utt, work)
                tmp = out.with_suffix(f".tmp.{ext}")
                _encode(src, fmt, tmp)
                tmp.rename(out)
            clips.append(Clip(utt, fmt, out))
    return clips


if __name__ == "__main__":
    import sys

    made = render(load_set())
    speech = [c for c in made if not c.utterance.silent and c.format == "wav8k"]
    durations = []
    for clip in speech:
        out = subprocess.run(["soxi", "-D", str(clip.path)], capture_output=True, text=True)
        durations.append(float(out.stdout.strip()))
    print(f"{len(made)} clips in {DEFAULT_CACHE}; speech {min(durations):.1f}-"
          f"{max(durations):.1f} s (n={len(durations)})", file=sys.stderr)
