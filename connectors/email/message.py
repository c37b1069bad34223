"""From a parsed email to the envelope. Pure functions (the clock and blob URIs come in)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from connectors.email.mime import ParsedEmail
from connectors.email.quotes import split_reply
from pipeline.envelope import Attachment, Channel, Envelope, Sender, Thread


def source_id_for(parsed: ParsedEmail, raw: bytes) -> str:
    """The message's identity across mailboxes and UIDVALIDITY changes.

    Message-ID, not the IMAP UID: a UID is only meaningful under one UIDVALIDITY, so a
    re-scanned mailbox would give every message a new id and ingest could not recognise
    what it already passed on. Without a Message-ID, the digest of the raw bytes is just as
    stable for a re-scan of the same stored message.
    """
    if parsed.message_id:
        return parsed.message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def to_envelope(parsed: ParsedEmail, *, source_id: str, received_at: datetime,
                attachments: list[Attachment], mailbox: str, uid: int,
                uidvalidity: int) -> Envelope:
    parts = split_reply(parsed.text)
    headers = dict(parsed.headers)
    # Where it was read from: for an operator tracing a message back to the mailbox.
    headers.update({"x-imap-mailbox": mailbox, "x-imap-uid": str(uid),
                    "x-imap-uidvalidity": str(uidvalidity)})
    if parsed.text_source != "none":
        headers["x-text-source"] = parsed.text_source
    return Envelope(
        channel=Channel.EMAIL,
        source_id=source_id,
        # Message-IDs collide: the content tells a retry from another message (docs/email.md).
        source_digest=parsed.content_digest or None,
        received_at=received_at,
        sender=Sender(email=parsed.from_email, display_name=parsed.from_name),
        text=parts.new_text,
        quoted_text=parts.quoted,
        signature=parts.signature,
        subject=parsed.subject,
        attachments=attachments,
        thread=Thread(in_reply_to=parsed.in_reply_to, references=parsed.references),
        headers=headers,
        notes=list(parsed.notes),
    )
