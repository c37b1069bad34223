"""Errors of the transcribe stage.

    PipelineError
    └── TranscribeError              root of this stage's errors
        ├── ModelUnavailable         the Whisper model could not be found, assembled or loaded
        │                            (also a TransientError: retried, the stage paused)
        └── AudioError               one recording cannot be transcribed (the message goes on
            │                        with ``Transcript.error = "<code>: <detail>"``)
            ├── EmptyAudio           no bytes, or no audio samples
            ├── CorruptAudio         the container or stream cannot be decoded
            ├── UnsupportedAudio     no audio stream, or no decoder for its codec
            └── AudioTooLong         longer than ``transcribe.max_audio_seconds``

``ModelUnavailable`` is an operations problem (wrong model name, no network to download it):
a ``TransientError``, so the stage pauses and retries the message (status shows why) rather
than dead-lettering every recording. ``AudioError`` is the sender's problem:
the message continues with the reason recorded.
"""

from __future__ import annotations

from pipeline.errors import PipelineError, TransientError


class TranscribeError(PipelineError):
    """Root of the transcribe stage's errors."""


class ModelUnavailable(TranscribeError, TransientError):
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
