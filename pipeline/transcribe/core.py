"""Transcribe: which attachments need a transcriber, and what a transcript says. Pure.

No model, no Kafka, no files here: the engine hands in plain segments and this module turns
them into the envelope's :class:`~pipeline.envelope.Transcript`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.envelope import Attachment, Envelope, Transcript


@dataclass(frozen=True)
class Segment:
    """One stretch of recognised speech, as the engine reports it."""

    text: str
    start: float
    end: float
    avg_logprob: float
    no_speech_prob: float
    tokens: int


@dataclass(frozen=True)
class Recognition:
    """What the engine recognised in one recording."""

    segments: tuple[Segment, ...]
    language: str | None
    language_probability: float | None
    duration_s: float


def pending_audio(envelope: Envelope) -> list[Attachment]:
    """Audio attachments stored in the blob store and not transcribed yet.

    Already-transcribed URIs are skipped, so a replayed or redelivered message is not
    transcribed twice and keeps one transcript per attachment.
    """
    done = {t.attachment_uri for t in envelope.transcripts}
    pending: dict[str, Attachment] = {}
    for attachment in envelope.audio_attachments:
        # The blob store is content-addressed: the same file attached twice has one URI
        # and gets one transcript.
        if attachment.uri and attachment.uri not in done:
            pending.setdefault(attachment.uri, attachment)
    return list(pending.values())


def unavailable_audio(envelope: Envelope) -> list[Attachment]:
    """Audio attachments the connector could not store (no URI): nothing to transcribe."""
    done = {t.attachment_uri for t in envelope.transcripts}
    return [a for a in envelope.audio_attachments
            if not a.uri and (a.filename or a.content_type) not in done]


def needs_transcriber(envelope: Envelope) -> bool:
    """Whether the message must wait for a transcriber (else it passes straight through)."""
    return bool(pending_audio(envelope))


def failed_transcript(attachment: Attachment, error: str, model: str | None) -> Transcript:
    """The transcript of a recording that could not be transcribed, with the reason."""
    return Transcript(attachment_uri=attachment.uri or attachment.filename
                      or attachment.content_type, error=error, model=model)


def unavailable_transcript(attachment: Attachment, model: str | None) -> Transcript:
    reason = attachment.error or "not stored by the connector"
    return failed_transcript(attachment, f"attachment_unavailable: {reason}", model)


def choose_language(probabilities: Sequence[tuple[str, float]],
                    allowed: Sequence[str]) -> tuple[str, float]:
    """The likeliest language among ``allowed`` (all when empty), with its probability.

    Whisper confuses close languages on short or synthetic speech; restricting to the
    languages a support desk handles turns a wrong guess into the right one.
    """
    wanted = {code.lower() for code in allowed}
    candidates = [(lang, p) for lang, p in probabilities if not wanted or lang in wanted]
    if not candidates:
        return (sorted(wanted)[0], 0.0) if wanted else ("", 0.0)
    return max(candidates, key=lambda item: item[1])


def confidence(segments: Sequence[Segment]) -> float | None:
    """exp of the token-weighted mean log-probability: ~0.9 clear speech, <0.4 guesswork."""
    weighted = [(s.avg_logprob, max(s.tokens, 1)) for s in segments if s.text.strip()]
    if not weighted:
        return None
    total = sum(w for _, w in weighted)
    mean = sum(lp * w for lp, w in weighted) / total
    return round(min(1.0, max(0.0, math.exp(mean))), 4)


def summarise(recognition: Recognition, attachment: Attachment, model: str) -> Transcript:
    """The transcript of one recording: joined text, language, confidence, no-speech flag."""
    text = " ".join(s.text.strip() for s in recognition.segments if s.text.strip())
    no_speech = not text
    return Transcript(
        attachment_uri=attachment.uri,
        text=text,
        language=None if no_speech else recognition.language,
        language_probability=None if no_speech else _round(recognition.language_probability),
        confidence=confidence(recognition.segments),
        duration_s=round(recognition.duration_s, 3),
        no_speech=no_speech,
        model=model,
    )


def with_transcripts(envelope: Envelope, transcripts: Sequence[Transcript]) -> Envelope:
    """A copy of the envelope with the transcripts added (nothing else changes)."""
    env = envelope.model_copy(deep=True)
    env.transcripts.extend(transcripts)
    return env


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
