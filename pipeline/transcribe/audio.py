"""Decode a recording (OGG/Opus, WAV, MP3, M4A...) to 16 kHz mono float32 samples.

PyAV (bundled FFmpeg, installed with faster-whisper) decodes everything Twilio, WhatsApp and
e-mail clients send. Unlike ``faster_whisper.decode_audio`` this stops as soon as the
recording exceeds the maximum duration, so a three-hour file never fills the memory, and it
translates FFmpeg's errors into :mod:`pipeline.transcribe.errors`.
"""

from __future__ import annotations

import io

import av
import av.error
import numpy as np

from pipeline.transcribe.errors import AudioTooLong, CorruptAudio, EmptyAudio, UnsupportedAudio

SAMPLE_RATE = 16_000
# A few undecodable frames (a truncated upload, a network glitch in a recording) are
# skipped like faster-whisper does; more than this and the file is called corrupt.
_MAX_BAD_FRAMES = 50


def decode(data: bytes, max_seconds: float) -> np.ndarray:
    """Samples of the first audio stream; raises an ``AudioError`` for what cannot be used."""
    if not data:
        raise EmptyAudio("no bytes")
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise CorruptAudio(_reason(exc)) from exc
    with container:
        if not container.streams.audio:
            raise UnsupportedAudio("no audio stream in the file")
        declared = container.duration / av.time_base if container.duration else None
        if declared is not None and declared > max_seconds:
            raise AudioTooLong(f"{declared:.1f} s > {max_seconds:g} s")
        samples = _decode_stream(container, int(max_seconds * SAMPLE_RATE) + SAMPLE_RATE // 10)
    if samples.size == 0:
        raise EmptyAudio("no audio samples")
    if samples.size > max_seconds * SAMPLE_RATE:
        raise AudioTooLong(f"more than {max_seconds:g} s")
    return samples


def _decode_stream(container: av.container.InputContainer, limit: int) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = bad = 0
    try:
        frames = container.decode(audio=0)
    except av.error.FFmpegError as exc:  # no decoder for the codec
        raise UnsupportedAudio(_reason(exc)) from exc
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            break
        except av.error.DecoderNotFoundError as exc:
            raise UnsupportedAudio(_reason(exc)) from exc
        except av.error.FFmpegError as exc:
            bad += 1
            if bad > _MAX_BAD_FRAMES or isinstance(exc, av.error.EOFError):
                if total:
                    break  # keep what was decoded before the damage
                raise CorruptAudio(_reason(exc)) from exc
            continue
        for out in resampler.resample(frame):
            chunk = out.to_ndarray().reshape(-1)
            chunks.append(chunk)
            total += chunk.size
        if total > limit:
            return np.zeros(total, dtype=np.float32)  # caller reports it as too long
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def _reason(exc: BaseException) -> str:
    # FFmpeg messages carry the in-memory file's repr; keep only the error itself.
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(";")[0][:200]
