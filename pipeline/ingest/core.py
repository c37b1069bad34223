"""Ingest: normalise what connectors wrote and recognise source retries. Pure functions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from pipeline.envelope import Envelope, message_id
from pipeline.ingest.config import IngestConfig

# Control characters other than newline and tab (and the Unicode line/paragraph separators,
# which we turn into newlines) only confuse matching and display.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200e\u200f\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Normalised:
    """The normalised envelope, and the text cut off by the size limit (kept by the agent)."""

    envelope: Envelope
    overflow_text: str | None = None


def normalise_text(text: str) -> str:
    """NFC, no control characters, single spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def normalise_line(text: str | None) -> str | None:
    """A one-line field (subject, display name): normalised, newlines folded."""
    if text is None:
        return None
    folded = normalise_text(text).replace("\n", " ")
    return folded or None


def normalise(envelope: Envelope, config: IngestConfig) -> Normalised:
    """Normalise text fields and apply size limits; never loses text (see ``overflow_text``).

    The input is left unchanged; only the parts that change are copied (a deep copy of the
    whole envelope cost more than everything else ingest does).
    """
    notes = list(envelope.notes)
    text = normalise_text(envelope.text)
    overflow = None
    if len(text) > config.max_text_chars:
        text, overflow = text[: config.max_text_chars], text
        notes.append(f"text truncated from {len(overflow)} to {config.max_text_chars} "
                     "characters; full text kept as attachment")
    subject = normalise_line(envelope.subject)
    if subject is not None and len(subject) > config.max_subject_chars:
        subject = subject[: config.max_subject_chars]
        notes.append(f"subject truncated to {config.max_subject_chars} characters")
    sender = envelope.sender.model_copy(update={
        "display_name": normalise_line(envelope.sender.display_name),
        "email": envelope.sender.email.strip() if envelope.sender.email else None,
        "phone": envelope.sender.phone.strip() if envelope.sender.phone else None,
    })
    env = envelope.model_copy(update={
        "text": text, "subject": subject, "sender": sender, "notes": notes,
        "attachments": list(envelope.attachments), "trace": list(envelope.trace)})
    return Normalised(env, overflow)


@dataclass(frozen=True)
class Sighting:
    """When and where an idempotency key was first seen (and, for a source key shared by
    messages of different content, the content digest of the first one)."""

    seen_at: float
    partition: int
    offset: int
    digest: str | None = None


def is_source_retry(first: Sighting | None, partition: int, offset: int, now: float,
                    window_seconds: float) -> bool:
    """A second delivery of the same source message within the window.

    The very record that was first seen is *not* a retry: after a crash faust redelivers
    it, and the output it was meant to produce may never have reached the broker.
    """
    if first is None or now - first.seen_at > window_seconds:
        return False
    return not (first.partition == partition and first.offset == offset)


def is_source_id_collision(first: Sighting | None, digest: str | None, now: float,
                           window_seconds: float) -> bool:
    """Another message, of different content, already came with this source id.

    ``first`` is the first sighting of the bare source key (channel + source id). It is not
    a retry (retries share the digest, and the idempotency key already caught them): it is
    a distinct message that happens to carry the same source id (an email Message-ID reused
    by a broken mailer or list software). Entries written before digests existed carry
    none: nothing can be said of them.
    """
    if first is None or digest is None or first.digest is None:
        return False
    return now - first.seen_at <= window_seconds and first.digest != digest


def collision_note(envelope: Envelope, first: Sighting) -> str:
    """What the envelope says about the message it shares its source id with."""
    other = message_id(envelope.channel, envelope.source_id, first.digest)
    return (f"source id {envelope.source_id} already used by another message with different "
            f"content (id {other}): kept as a distinct message")
