"""Errors of the transcribe stage.

    PipelineError
    └── TranscribeError              root of this stage's errors
        ├── ModelUnavailable         the Whisper model could not be found, assembled or loaded
        └── AudioError               one recording cannot be transcribed (the message goes on
            │                        with ``Transcript.error = "<code>: <detail>"``)
            ├── EmptyAudio           no bytes, or no audio samples
            ├── CorruptAudio         the container or stream cannot be decoded
            ├── UnsupportedAudio     no audio stream, or no decoder for its codec
            └── AudioTooLong         longer than ``transcribe.max_audio_seconds``

``ModelUnavailable`` is an operations problem (wrong model name, no network to download it):
the message is dead-lettered, replayable once fixed. ``AudioError`` is the sender's problem:
the message continues with the reason recorded.
"""

from __future__ import annotations

from pipeline.errors import PipelineError


class TranscribeError(PipelineError):
    """Root of the transcribe stage's errors."""


class ModelUnavailable(TranscribeError):
    """The Whisper model could not be found, assembled or loaded."""


class AudioError(TranscribeError):
    """One recording cannot be transcribed; ``code`` is machine-readable."""

    code = "bad_audio"

    def describe(self) -> str:
        """``<code>: <detail>``, as stored in ``Transcript.error``."""
        return f"{self.code}: {self}" if str(self) else self.code


class EmptyAudio(AudioError):
    """No bytes, or no audio samples."""

    code = "empty_audio"


class CorruptAudio(AudioError):
    """The container or stream cannot be decoded."""

    code = "corrupt_audio"


class UnsupportedAudio(AudioError):
    """No audio stream, or no decoder for its codec."""

    code = "unsupported_audio"


class AudioTooLong(AudioError):
    """Longer than the configured maximum."""

    code = "too_long"
