"""The transcriber: one faster-whisper model per worker, run on a thread pool.

Why threads and not processes: CTranslate2 (the model), onnxruntime (the VAD) and FFmpeg (the
decoder) release the GIL while they compute, so threads give real parallelism while sharing
one copy of the model in memory; a process pool would load the model once per process.
The event loop only awaits futures, so the worker keeps heart-beating and keeps its group
membership during a ten-minute recording.

A recording being transcribed when the worker stops is finished, not abandoned: faust waits
for its streams to drain before committing, so the output is produced and the offset
committed; a killed worker's recordings are redelivered (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.transcribe import audio
from pipeline.transcribe.config import TranscribeConfig
from pipeline.transcribe.core import Recognition, Segment, choose_language
from pipeline.transcribe.errors import ModelUnavailable
from pipeline.transcribe.model import choose_device, resolve_model

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)


class Transcriber:
    """Speech to text for whole recordings, off the event loop."""

    def __init__(self, config: TranscribeConfig) -> None:
        self.config = config
        self.model_name = config.model
        self.device: str | None = None
        self.compute_type: str | None = None
        self._model: WhisperModel | None = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=config.concurrency,
                                            thread_name_prefix="transcribe")

    # -- loading -------------------------------------------------------------------------

    def load(self) -> WhisperModel:
        """The model, loaded on first call (blocking; thread-safe; once per worker)."""
        with self._load_lock:
            if self._model is not None:
                return self._model
            started = time.perf_counter()
            from faster_whisper import WhisperModel  # heavy import: only where it is used

            location = resolve_model(self.config.model, self.config.model_cache_dir)
            device, compute_type = choose_device(self.config.device, self.config.compute_type)
            try:
                self._model = WhisperModel(
                    location, device=device, compute_type=compute_type,
                    cpu_threads=self.config.cpu_threads, num_workers=self.config.concurrency,
                    download_root=self.config.download_root)
            except Exception as exc:  # ctranslate2/huggingface raise plain RuntimeError/OSError
                raise ModelUnavailable(f"cannot load Whisper model {self.config.model!r} on "
                                       f"{device}/{compute_type}: {exc}") from exc
            self.device, self.compute_type = device, compute_type
            log.info("event=model_loaded model=%s device=%s compute_type=%s seconds=%.2f",
                     self.config.model, device, compute_type, time.perf_counter() - started)
            return self._model

    async def aload(self) -> None:
        """``load`` off the event loop."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self.load)

    # -- transcription -------------------------------------------------------------------

    async def transcribe(self, data: bytes) -> Recognition:
        """Recognise one recording on the pool; raises ``AudioError`` for unusable audio."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.transcribe_bytes, data)

    def transcribe_bytes(self, data: bytes) -> Recognition:
        """Decode and recognise one recording (blocking)."""
        samples = audio.decode(data, self.config.max_audio_seconds)
        return self.recognise(samples)

    def recognise(self, samples: np.ndarray) -> Recognition:
        """Recognise 16 kHz mono samples (blocking)."""
        model = self.load()
        duration = samples.size / audio.SAMPLE_RATE
        language, probability = self._language(model, samples)
        options: dict[str, Any] = {"beam_size": self.config.beam_size,
                                   "vad_filter": self.config.vad}
        segments, info = model.transcribe(samples, language=language, **options)
        found: list[Segment] = []
        for seg in segments:  # lazy: each step decodes the next 30 s window
            found.append(Segment(seg.text, seg.start, seg.end, seg.avg_logprob,
                                 seg.no_speech_prob, len(seg.tokens)))
        if language is None:
            language, probability = info.language, info.language_probability
        return Recognition(tuple(found), language, probability, duration)

    def _language(self, model: WhisperModel,
                  samples: np.ndarray) -> tuple[str | None, float | None]:
        """None (let Whisper detect), the one configured language, or the best allowed one."""
        allowed = self.config.languages
        if not allowed:
            return None, None
        if len(allowed) == 1:
            return allowed[0], 1.0
        try:
            _, _, probabilities = model.detect_language(samples, vad_filter=self.config.vad)
        except Exception:  # nothing left after VAD: no speech to detect a language in
            return allowed[0], None
        return choose_language(probabilities, allowed)
