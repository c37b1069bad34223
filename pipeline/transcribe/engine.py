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
from pipeline.transcribe.core import (
    LanguagePlan,
    Recognition,
    Segment,
    choose_language,
    plan_language,
    time_budget,
)
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

    async def transcribe(self, data: bytes, account_language: str | None = None) -> Recognition:
        """Recognise one recording on the pool; raises ``AudioError`` for unusable audio."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.transcribe_bytes, data,
                                          account_language)

    def transcribe_bytes(self, data: bytes, account_language: str | None = None) -> Recognition:
        """Decode and recognise one recording (blocking)."""
        samples = audio.decode(data, self.config.max_audio_seconds)
        return self.recognise(samples, account_language)

    def decoding_options(self) -> dict[str, Any]:
        """faster-whisper's decoding options from the settings (shared with the benches)."""
        cfg = self.config
        temperatures = cfg.temperatures[0] if len(cfg.temperatures) == 1 else cfg.temperatures
        return {"beam_size": cfg.beam_size, "best_of": cfg.best_of, "vad_filter": cfg.vad,
                "temperature": temperatures,
                "compression_ratio_threshold": cfg.compression_ratio_threshold,
                "log_prob_threshold": cfg.log_prob_threshold,
                "no_speech_threshold": cfg.no_speech_threshold,
                "condition_on_previous_text": cfg.condition_on_previous_text,
                "max_new_tokens": cfg.max_new_tokens}

    def recognise(self, samples: np.ndarray, account_language: str | None = None) -> Recognition:
        """Recognise 16 kHz mono samples (blocking), within the recording's time budget.

        faster-whisper decodes lazily, one 30 s window per step: once the budget is spent no
        further window is started, and what was recognised so far is returned with the
        ``time_bound`` bound. One window's cost is itself bounded by ``max_new_tokens`` and
        the length of the temperature list.
        """
        cfg = self.config
        model = self.load()
        started = time.monotonic()
        duration = samples.size / audio.SAMPLE_RATE
        budget = time_budget(duration, cfg.max_realtime_factor, cfg.min_budget_seconds)
        plan = plan_language(account_language if cfg.language_from_directory else None,
                             cfg.languages)
        language, probability, source = self._language(model, samples, plan)
        segments, info = model.transcribe(samples, language=language,
                                          **self.decoding_options())
        found: list[Segment] = []
        bounds: list[str] = []
        for seg in segments:  # lazy: each step decodes the next 30 s window
            found.append(Segment(seg.text, seg.start, seg.end, seg.avg_logprob,
                                 seg.no_speech_prob, len(seg.tokens)))
            if cfg.max_new_tokens and len(seg.tokens) >= cfg.max_new_tokens \
                    and "token_cap" not in bounds:
                bounds.append("token_cap")
            if time.monotonic() - started > budget and seg.end < duration - 1.0:
                bounds.append("time_bound")
                log.warning("event=transcription_time_bound audio_s=%.1f budget_s=%.1f "
                            "decoded_to_s=%.1f", duration, budget, seg.end)
                break
        if language is None:
            language, probability, source = info.language, info.language_probability, "detected"
        speech_s = getattr(info, "duration_after_vad", None) if cfg.vad else None
        return Recognition(tuple(found), language, probability, duration, speech_s=speech_s,
                           language_source=source, bounds=tuple(bounds))

    def _language(self, model: WhisperModel, samples: np.ndarray,
                  plan: LanguagePlan) -> tuple[str | None, float | None, str | None]:
        """The planned language, or the likeliest allowed one (None: let Whisper detect)."""
        if plan.language is not None:
            return plan.language, 1.0, plan.source
        if not plan.allowed:
            return None, None, None
        try:
            _, _, probabilities = model.detect_language(samples, vad_filter=self.config.vad)
        except Exception:  # nothing left after VAD: no speech to detect a language in
            return plan.allowed[0], None, "fallback"
        language, probability = choose_language(probabilities, plan.allowed)
        return language, probability, "detected"
