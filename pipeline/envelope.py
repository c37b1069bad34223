"""The message envelope: the one model every connector writes and every stage reads.

JSON on the wire (``to_bytes`` / ``from_bytes``). Stages only *add* their own section
(``transcripts``, ``identity``, ``refs``, ``spam``, ``case``, ``routing``); they never
rewrite what a connector wrote, so any topic can be replayed into any later stage.

The envelope is a contract between versions (a rolling upgrade runs newer connectors
beside older workers):

* ``schema_version`` is the *major* version. It is bumped only on a change an older reader
  could misread (a field removed, renamed, or given another meaning or type). Reading an
  envelope of a newer major version raises ``UnsupportedEnvelopeVersion`` (an
  ``EnvelopeError``: the stage dead-letters it with that reason, to replay after the upgrade).
* Adding an optional field is not a new major version: every model keeps fields it does not
  know (``extra="allow"``) and writes them back unchanged, so an older stage re-encoding an
  envelope passes a newer writer's fields on.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.errors import UnsupportedEnvelopeVersion

# The major version this code reads and writes (see the module docstring).
SCHEMA_VERSION = 1

# uuid5 namespace for message ids: the same channel + source id always gives the same id,
# so a source retry carries the id of the message it repeats.
_MESSAGE_NAMESPACE = uuid.UUID("6f1c9a52-4b7e-4f0e-9a43-2c1d9e0b7a11")


class Channel(StrEnum):
    """Where a message came from."""

    WHATSAPP = "whatsapp"
    VOICEMAIL = "voicemail"
    EMAIL = "email"
    CHAT = "chat"


class AttachmentKind(StrEnum):
    AUDIO = "audio"
    IMAGE = "image"
    VIDEO = "video"
    DOCUMENT = "document"
    OTHER = "other"


class _Model(BaseModel):
    # Unknown fields are kept and written back: a newer writer's additions survive an older
    # stage (nested sections too, where a newer stage may add a field to its own section).
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class AppIdentity(_Model):
    """The logged-in user an in-app message was signed for (trusted: the app authenticated it)."""

    user_id: str
    account_id: str
    email: str | None = None
    name: str | None = None


class Sender(_Model):
    """Every address the source gave for the sender, as received (identify normalises)."""

    phone: str | None = None
    email: str | None = None
    whatsapp_id: str | None = None
    display_name: str | None = None
    app_identity: AppIdentity | None = None

    def address(self) -> str:
        """The most specific address, used as the partition key before identification."""
        if self.app_identity is not None:
            return f"app:{self.app_identity.account_id}:{self.app_identity.user_id}"
        return self.whatsapp_id or self.phone or (self.email or "").lower() or "unknown"


class Attachment(_Model):
    """A media file, held in the blob store; the envelope carries its URI, never its bytes."""

    kind: AttachmentKind = AttachmentKind.OTHER
    content_type: str = "application/octet-stream"
    size: int = 0
    uri: str | None = None
    filename: str | None = None
    sha256: str | None = None
    # Set when the connector could not fetch or keep the file (download failed, oversize,
    # content type refused): the message still travels, with the reason.
    error: str | None = None

    @staticmethod
    def kind_for(content_type: str) -> AttachmentKind:
        major = content_type.split("/", 1)[0].lower()
        if major in ("audio", "image", "video"):
            return AttachmentKind(major)
        if content_type.lower() in ("application/ogg", "application/x-ogg"):
            return AttachmentKind.AUDIO
        if major in ("application", "text"):
            return AttachmentKind.DOCUMENT
        return AttachmentKind.OTHER


class Thread(_Model):
    """What ties a message to an earlier one: email headers, a case tag, a conversation."""

    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    case_tag: str | None = None
    conversation_id: str | None = None


class Transcript(_Model):
    """Speech-to-text of one audio attachment (added by the transcribe stage)."""

    attachment_uri: str | None = None
    text: str = ""
    language: str | None = None
    language_probability: float | None = None
    confidence: float | None = None
    duration_s: float | None = None
    # Seconds of speech voice-activity detection found (absent: VAD off or not run).
    speech_s: float | None = None
    # Where ``language`` came from: account (the customer's directory language), forced
    # (the one configured language), detected (among the configured ones).
    language_source: str | None = None
    # True only when nothing was recognised and no speech was detected (silence, noise).
    no_speech: bool = False
    # What a reader should know: speech_not_transcribed (speech detected, no text),
    # loop_cut (a repetition loop was cut), time_bound / token_cap (decoding stopped at a
    # bound; the text is what was decoded until then).
    flags: list[str] = Field(default_factory=list)
    model: str | None = None
    error: str | None = None


class Identity(_Model):
    """Who sent the message, matched against customer accounts' registered employees."""

    identified: bool = False
    ambiguous: bool = False
    account_id: str | None = None
    account_name: str | None = None
    employee_id: str | None = None
    employee_name: str | None = None
    tier: str | None = None
    country: str | None = None
    language: str | None = None
    matched_by: str | None = None
    # Addresses tried (normalised) and, when ambiguous, the accounts that claim the address.
    tried: list[str] = Field(default_factory=list)
    candidates: list[str] = Field(default_factory=list)


class Reference(_Model):
    """A business reference quoted by the customer: order code, invoice, contract, URL."""

    kind: str
    value: str


class SpamVerdict(_Model):
    """The spam filter's decision; a quarantined message keeps its reason and rule."""

    quarantined: bool = False
    reason: str | None = None
    explanation: str | None = None
    rule: str | None = None
    # Accepted, but a person should know (e.g. low_confidence_transcript: the transcript of
    # a recording may be wrong); ``listen_to`` holds the recordings' URIs.
    flags: list[str] = Field(default_factory=list)
    listen_to: list[str] = Field(default_factory=list)
    released: bool = False
    released_at: datetime | None = None


class CaseLink(_Model):
    """The case a message opened or joined (added by dedup)."""

    case_id: str
    action: Literal["opened", "merged"]
    score: float | None = None
    evidence: list[str] = Field(default_factory=list)
    deprioritised: bool = False
    # How the message found its case: new, thread, reference, conversation, fuzzy,
    # redelivery (the same message seen again: same case, nothing changed).
    matched_by: str | None = None
    opened_at: datetime | None = None
    message_count: int = 1
    # Other open cases of the customer when this message was handled (one question at a time).
    other_open_cases: list[str] = Field(default_factory=list)


class Routing(_Model):
    """Where the case goes (added by route)."""

    queue: str
    priority: str
    sla_due_at: datetime | None = None
    rule: str
    category: str | None = None
    category_reason: str | None = None
    difficulty: str | None = None
    # Due time to resolve, from the difficulty level, in the queue calendar's business hours.
    resolution_due_at: datetime | None = None
    calendar: str | None = None
    # Why the rule matched, one line per condition; which rules file (sha256 prefix) decided.
    reasons: list[str] = Field(default_factory=list)
    rules_version: str | None = None
    # A message merged into an already routed case follows the case's queue (see docs).
    follows_case: bool = False


class StageMark(_Model):
    """A stage's pass over the message: feeds latency metrics and tells an operator the path."""

    stage: str
    at: datetime


class Envelope(_Model):
    """One support message, from the connector that received it to the queue it lands in."""

    schema_version: int = SCHEMA_VERSION
    id: str = ""
    channel: Channel
    source_id: str
    # Digest of the source message's content, set by connectors whose source ids are not
    # unique on their own (email: Message-IDs collide). Part of the id and the idempotency
    # key, so a retry (same id, same content) is dropped and a collision is a new message.
    source_digest: str | None = None
    received_at: datetime
    sender: Sender = Field(default_factory=Sender)
    text: str = ""
    # Email: what the reply quoted (earlier thread) and the sender's signature, split off
    # ``text`` so matching reads only the new words; kept, never dropped.
    quoted_text: str | None = None
    signature: str | None = None
    subject: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    thread: Thread = Field(default_factory=Thread)
    # Protocol headers a later stage needs (email auto-reply headers, Twilio call status...),
    # lower-cased names; connectors keep protocol quirks, stages read only these plain pairs.
    headers: dict[str, str] = Field(default_factory=dict)
    # Non-fatal things that happened on the way (media download failed, text truncated...).
    notes: list[str] = Field(default_factory=list)

    transcripts: list[Transcript] = Field(default_factory=list)
    identity: Identity | None = None
    refs: list[Reference] = Field(default_factory=list)
    spam: SpamVerdict | None = None
    case: CaseLink | None = None
    routing: Routing | None = None
    trace: list[StageMark] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _refuse_newer_major_version(cls, data: Any) -> Any:
        # Before any field is read: a newer major version may have changed what the fields
        # mean, so its envelope is refused as a whole, with the version as the reason.
        if isinstance(data, dict):
            seen = _major(data.get("schema_version"))
            if seen is not None and seen > SCHEMA_VERSION:
                raise UnsupportedEnvelopeVersion(seen, SCHEMA_VERSION)
        return data

    @field_validator("headers")
    @classmethod
    def _lower_header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        return {name.lower(): value for name, value in headers.items()}

    def model_post_init(self, __context: Any) -> None:
        if not self.id:
            self.id = message_id(self.channel, self.source_id, self.source_digest)

    @property
    def idempotency_key(self) -> str:
        """Same value for every delivery of one source message (Twilio retry, IMAP re-scan)."""
        if self.source_digest:
            return f"{self.source_key}#{self.source_digest}"
        return self.source_key

    @property
    def source_key(self) -> str:
        """Channel and source id alone: shared by distinct messages whose source id collides."""
        return f"{self.channel.value}:{self.source_id}"

    @property
    def sender_key(self) -> str:
        """Partition key before identification: channel + sender address."""
        return f"{self.channel.value}:{self.sender.address()}"

    @property
    def audio_attachments(self) -> list[Attachment]:
        return [a for a in self.attachments if a.kind is AttachmentKind.AUDIO]

    @property
    def awaiting_transcription(self) -> bool:
        """An audio attachment has no transcript yet (not even a failed one)."""
        done = {t.attachment_uri for t in self.transcripts}
        return any((a.uri or a.filename or a.content_type) not in done
                   for a in self.audio_attachments)

    def full_text(self) -> str:
        """Subject, body and transcripts: everything a person would read."""
        parts = [self.subject or "", self.text, *(t.text for t in self.transcripts)]
        return "\n".join(p for p in parts if p)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Envelope:
        return cls.model_validate_json(data)


def _major(version: Any) -> int | None:
    """The major version an envelope declares (``2``, ``"2"``, ``"2.1"``), None if unreadable."""
    if isinstance(version, bool):
        return None
    if isinstance(version, int):
        return version
    if isinstance(version, float) and version.is_integer():
        return int(version)
    if isinstance(version, str):
        head = version.strip().split(".", 1)[0]
        return int(head) if head.isdigit() else None
    return None


def message_id(channel: Channel | str, source_id: str, source_digest: str | None = None) -> str:
    """Stable message id derived from channel + source id (+ content digest where set)."""
    name = f"{Channel(channel).value}\x1f{source_id}"
    if source_digest:
        name += f"\x1f{source_digest}"
    return str(uuid.uuid5(_MESSAGE_NAMESPACE, name))
