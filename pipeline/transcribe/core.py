"""Transcribe: which attachments need a transcriber, and what a transcript says. Pure.

No model, no Kafka, no files here: the engine hands in plain segments and this module turns
them into the envelope's :class:`~pipeline.envelope.Transcript`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

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
    # Seconds of speech the VAD found (None: VAD off, unknown).
    speech_s: float | None = None
    # Where the language came from: account, forced, detected, fallback (see choose_language).
    language_source: str | None = None
    # Bounds the decoding hit: time_bound (budget spent, later windows not decoded),
    # token_cap (a window ran to max_new_tokens).
    bounds: tuple[str, ...] = field(default_factory=tuple)


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

    Whisper confuses close languages on short or phone-band speech (a French voicemail at
    8 kHz came out as Thai); restricting to the languages the desk handles means a wrong
    guess is at worst another language we handle, never one outside the list.
    """
    wanted = [code.lower() for code in allowed]
    candidates = [(lang, p) for lang, p in probabilities if not wanted or lang in wanted]
    if not candidates:
        return (wanted[0], 0.0) if wanted else ("", 0.0)
    return max(candidates, key=lambda item: item[1])


@dataclass(frozen=True)
class LanguagePlan:
    """How to pick the language of one recording: forced (``language``) or detected."""

    language: str | None
    source: str  # account, forced, detect
    allowed: tuple[str, ...] = ()


def plan_language(account_language: str | None, allowed: Sequence[str]) -> LanguagePlan:
    """The customer's account language when the desk handles it; else force or detect.

    - the account's language, if it is in ``allowed`` (or ``allowed`` is empty): forced;
    - one allowed language: forced;
    - several: detected among them only (``choose_language``); none: detected freely.
    """
    wanted = tuple(code.lower() for code in allowed)
    lang = (account_language or "").strip().lower()[:2] or None
    if lang and (not wanted or lang in wanted):
        return LanguagePlan(lang, "account", wanted)
    if len(wanted) == 1:
        return LanguagePlan(wanted[0], "forced", wanted)
    return LanguagePlan(None, "detect", wanted)


def time_budget(duration_s: float, factor: float, floor_s: float) -> float:
    """Seconds one recording may take: a multiple of its duration, never below ``floor_s``.

    The floor covers the fixed cost of one 30 s encoder window (a 5 s note costs about as
    much as a 30 s one).
    """
    return max(floor_s, factor * duration_s)


_WORD = re.compile(r"\S+")


def _norm(word: str) -> str:
    return word.strip(".,;:!?\"'()«»").lower()


# One "word" that is a short unit repeated back to back ("ah!ah!ah!ah!ah!", "!!!!!!!!!!"):
# Whisper loops without spaces too. Units of 2-6 characters need 5 copies, one character 10,
# so "2000000" or "Allô" is left alone (and a run of one digit never: a number).
_GLUED_LOOP = re.compile(r"(\D)\1{9,}|(.{2,6}?)\2{4,}")


def _one_copy(match: re.Match[str]) -> str:
    char, unit = match.group(1), match.group(2)
    if char:
        return char
    # "0000000000", "0101010101": a number (a phone number is five pairs), never a loop.
    return match.group(0) if len(set(unit)) == 1 or unit.isdigit() else unit


def _cut_glued(word: str) -> str:
    return _GLUED_LOOP.sub(_one_copy, word)


def cut_loops(text: str, max_ngram: int = 24, min_repeats: int = 3) -> tuple[str, bool]:
    """The text with repetition loops cut to one occurrence, and whether one was cut.

    A loop is the same 1..``max_ngram`` words repeated back to back at least
    ``min_repeats`` times (4 for one or two words: "non non non" is said, "non" ×4 is not
    likely); a whole sentence repeated is the usual Whisper loop, hence up to 24 words.
    What follows the loop is kept, except a last, partial occurrence that ends the text (the
    token cap cut the loop mid-way). One word made of a short unit repeated is cut too.
    Greedy decoding at temperature 0 loops on unclear audio until the token limit; the first
    occurrence is usually what was said.
    """
    raw = _WORD.findall(text)
    words = [_cut_glued(w) for w in raw]
    cut = words != raw
    keys = [_norm(w) for w in words]
    out: list[str] = []
    i = 0
    while i < len(words):
        skipped = False
        for n in range(1, max_ngram + 1):
            need = min_repeats + 1 if n <= 2 else min_repeats
            if i + n * need > len(words):
                break
            gram = keys[i:i + n]
            if not any(gram):
                continue
            if all(k.isdigit() for k in gram):
                need = max(need, 6)  # "06 12 12 12 12" is a phone number, not a loop
            reps = 1
            while keys[i + reps * n:i + (reps + 1) * n] == gram:
                reps += 1
            if reps >= need:
                out.extend(words[i:i + n])
                i += reps * n
                tail = keys[i:]
                if tail and len(tail) < n and tail == gram[:len(tail)]:
                    i = len(words)  # the loop's last copy, cut short by the token cap
                cut = skipped = True
                break
        if not skipped:
            out.append(words[i])
            i += 1
    return (" ".join(out) if cut else text), cut


def confidence(segments: Sequence[Segment]) -> float | None:
    """exp of the token-weighted mean log-probability: ~0.9 clear speech, <0.4 guesswork."""
    weighted = [(s.avg_logprob, max(s.tokens, 1)) for s in segments if s.text.strip()]
    if not weighted:
        return None
    total = sum(w for _, w in weighted)
    mean = sum(lp * w for lp, w in weighted) / total
    return round(min(1.0, max(0.0, math.exp(mean))), 4)


def summarise(recognition: Recognition, attachment: Attachment, model: str,
              min_speech_seconds: float = 0.5) -> Transcript:
    """The transcript of one recording: text, language, confidence, flags.

    ``no_speech`` only when nothing was recognised *and* the VAD found no speech (or was
    off). Speech the VAD heard but the model left empty is ``speech_not_transcribed``, not
    silence: a person must listen to it. Loops are cut (``loop_cut``); a bound the decoding
    hit is named (``time_bound``, ``token_cap``), the text so far being kept.
    """
    joined = " ".join(s.text.strip() for s in recognition.segments if s.text.strip())
    text, looped = cut_loops(joined)
    flags = list(recognition.bounds)
    if looped:
        flags.append("loop_cut")
    heard_speech = (recognition.speech_s is not None
                    and recognition.speech_s >= min_speech_seconds)
    no_speech = not text and not heard_speech
    if not text and heard_speech:
        flags.append("speech_not_transcribed")
    return Transcript(
        attachment_uri=attachment.uri,
        text=text,
        language=None if no_speech else recognition.language,
        language_probability=None if no_speech else _round(recognition.language_probability),
        language_source=None if no_speech else recognition.language_source,
        confidence=confidence(recognition.segments),
        duration_s=round(recognition.duration_s, 3),
        speech_s=_round(recognition.speech_s),
        no_speech=no_speech,
        flags=flags,
        model=model,
    )


def with_transcripts(envelope: Envelope, transcripts: Sequence[Transcript]) -> Envelope:
    """A copy of the envelope with the transcripts added (nothing else changes)."""
    env = envelope.model_copy(deep=True)
    env.transcripts.extend(transcripts)
    return env


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
