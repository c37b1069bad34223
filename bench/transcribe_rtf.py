"""Transcription speed: real-time factor and messages per minute for 5 s, 30 s and 2 min.

    /work/venv/bin/python bench/transcribe_rtf.py                       # CPU, base int8, 2 threads
    /work/venv/bin/python bench/transcribe_rtf.py --device cuda         # same model and audio, GPU
    /work/venv/bin/python bench/transcribe_rtf.py --durations 5 30 --repeat 3

The recordings are French support requests spoken by espeak-ng (continuous speech, so the
VAD removes little), trimmed to the exact duration with sox and encoded OGG/Opus like a
WhatsApp voice note. Each figure is the whole path a worker runs per attachment: decode
(PyAV), VAD, language detection, beam search. The model is loaded once, before timing.

real-time factor = processing seconds / audio seconds (lower is faster; 0.1 = ten times
faster than real time); messages/min = 60 / processing seconds of one recording, for one
worker at ``transcribe.concurrency = 1``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.transcribe.config import TranscribeConfig  # noqa: E402
from pipeline.transcribe.engine import Transcriber  # noqa: E402

SENTENCES = [
    "Bonjour, je vous appelle au sujet de ma commande numéro 2047 qui est en retard.",
    "La facture que j'ai reçue ne correspond pas au devis, le montant est trop élevé.",
    "Mon contrat professionnel devait être renouvelé le mois dernier.",
    "Sur l'iPad, l'application se ferme dès que j'ouvre la caisse.",
    "Pouvez-vous me rappeler cet après-midi, s'il vous plaît ? Merci beaucoup.",
]


def make_recording(seconds: float, workdir: Path) -> Path:
    """Speech of exactly ``seconds``, OGG/Opus."""
    text = " ".join(SENTENCES)
    speech = workdir / "speech.wav"
    if not speech.exists():
        # ~19 s per round of sentences: ten rounds cover the 2-minute recording.
        subprocess.run(["espeak-ng", "-v", "fr", "-w", str(speech), " ".join([text] * 10)],
                       check=True, capture_output=True)
    wav = workdir / f"speech-{seconds:g}.wav"
    subprocess.run(["sox", str(speech), str(wav), "trim", "0", f"{seconds:g}"], check=True,
                   capture_output=True)
    ogg = wav.with_suffix(".ogg")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-c:a", "libopus",
                    "-b:a", "24k", str(ogg)], check=True, capture_output=True)
    return ogg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    parser.add_argument("--compute-type", default="auto",
                        help="auto: int8 on CPU, float16 on CUDA")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (CTranslate2)")
    parser.add_argument("--model", default="bundled:base")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--durations", type=float, nargs="+", default=[5, 30, 120])
    parser.add_argument("--repeat", type=int, default=1, help="runs per duration (median)")
    parser.add_argument("--cache-dir", default="var/models")
    args = parser.parse_args()
    for tool in ("espeak-ng", "sox", "ffmpeg"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required (apt-get install {tool})")

    config = TranscribeConfig(model=args.model, device=args.device,
                              compute_type=args.compute_type, cpu_threads=args.threads,
                              beam_size=args.beam_size, model_cache_dir=args.cache_dir,
                              max_audio_seconds=max(args.durations) + 10)
    transcriber = Transcriber(config)
    started = time.perf_counter()
    transcriber.load()
    load_s = time.perf_counter() - started
    print(f"model={args.model} device={transcriber.device} compute_type="
          f"{transcriber.compute_type} threads={args.threads} beam={args.beam_size} "
          f"load={load_s:.1f}s")
    print(f"{'audio':>8} {'runs':>4} {'processing':>11} {'RTF':>7} {'x realtime':>10} "
          f"{'msgs/min':>9}  first words")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.durations:
            data = make_recording(seconds, Path(tmp)).read_bytes()
            timings, text = [], ""
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                recognition = transcriber.transcribe_bytes(data)
                timings.append(time.perf_counter() - t0)
                text = " ".join(s.text.strip() for s in recognition.segments)
            took = statistics.median(timings)
            rtf = took / recognition.duration_s
            print(f"{recognition.duration_s:7.1f}s {args.repeat:4d} {took:10.2f}s {rtf:7.3f} "
                  f"{1 / rtf:9.1f}x {60 / took:9.1f}  {text[:50]!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
