"""The WhatsApp message contract: Twilio's webhook form (or a REST listing) → an envelope.

Pure functions: no network, no clock. Media are listed here as (URL, declared type); the
connector downloads them and appends the attachments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.envelope import Channel, Envelope, Sender, Thread
from pipeline.errors import InvalidPayload

WHATSAPP_PREFIX = "whatsapp:"


@dataclass(frozen=True)
class MediaRef:
    url: str
    content_type: str


@dataclass(frozen=True)
class InboundWhatsApp:
    """One WhatsApp message Twilio received for us, however we learnt about it."""

    message_sid: str
    sender: str  # whatsapp:+33612345678
    to: str = ""
    profile_name: str | None = None
    body: str = ""
    media: list[MediaRef] = field(default_factory=list)
    account_sid: str = ""
    replied_to: str | None = None
    location: str | None = None
    # When Twilio received it (REST listings say; a webhook means "just now").
    sent_at: datetime | None = None
    via: str = "webhook"


_OUTBOUND_STATUSES = frozenset({"accepted", "queued", "sending", "sent", "delivered", "read",
                                "undelivered", "failed", "canceled"})


def is_status_callback(form: Mapping[str, str]) -> bool:
    """A delivery report about a message *we* sent (same URL configured for both by mistake)."""
    return (form.get("MessageStatus") or form.get("SmsStatus") or "") in _OUTBOUND_STATUSES


def from_webhook(form: Mapping[str, str]) -> InboundWhatsApp:
    """Read Twilio's Messaging webhook parameters (InvalidPayload when they make no sense)."""
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or ""
    sender = form.get("From", "")
    if not sid:
        raise InvalidPayload("MessageSid is missing")
    if not sender:
        raise InvalidPayload("From is missing")
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError as exc:
        raise InvalidPayload(f"NumMedia is not a number: {form.get('NumMedia')!r}") from exc
    media = []
    for i in range(min(count, 10)):  # WhatsApp allows one, MMS up to ten
        url = form.get(f"MediaUrl{i}")
        if url:
            media.append(MediaRef(url, form.get(f"MediaContentType{i}", "")))
    location = None
    if form.get("Latitude") and form.get("Longitude"):
        location = f"{form['Latitude']},{form['Longitude']}"
        if form.get("Address") or form.get("Label"):
            location += f" ({form.get('Label') or form.get('Address')})"
    return InboundWhatsApp(
        message_sid=sid, sender=sender, to=form.get("To", ""),
        profile_name=form.get("ProfileName") or None, body=form.get("Body", ""),
        media=media, account_sid=form.get("AccountSid", ""),
        replied_to=form.get("OriginalRepliedMessageSid") or None, location=location)


def to_envelope(message: InboundWhatsApp, received_at: datetime) -> Envelope:
    """The envelope for a WhatsApp message, without its attachments (added once stored)."""
    phone = message.sender.removeprefix(WHATSAPP_PREFIX)
    headers = {"x-twilio-to": message.to, "x-twilio-via": message.via}
    if message.location:
        headers["x-whatsapp-location"] = message.location
    return Envelope(
        channel=Channel.WHATSAPP,
        source_id=message.message_sid,
        received_at=received_at,
        sender=Sender(
            phone=phone if phone.startswith("+") else None,
            whatsapp_id=message.sender if message.sender.startswith(WHATSAPP_PREFIX) else None,
            display_name=message.profile_name,
        ),
        text=message.body,
        thread=Thread(in_reply_to=message.replied_to),
        headers=headers,
    )


def is_inbound_whatsapp(direction: str | None, sender: str | None, to: str | None,
                        our_number: str | None) -> bool:
    """A listed message the webhook should have brought us (not one we sent)."""
    if direction != "inbound" or not (sender or "").startswith(WHATSAPP_PREFIX):
        return False
    return our_number is None or to == our_number
