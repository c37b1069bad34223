"""The envelope: stable ids, wire format, keys."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from pipeline.envelope import (
    AppIdentity,
    Attachment,
    AttachmentKind,
    Channel,
    Envelope,
    Sender,
    Transcript,
    message_id,
)
from pipeline.errors import EnvelopeError
from pipeline.stage import decode_envelope

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def test_id_is_stable_per_channel_and_source_id():
    a = Envelope(channel=Channel.WHATSAPP, source_id="SM123", received_at=NOW)
    b = Envelope(channel="whatsapp", source_id="SM123", received_at=NOW, text="retry")
    c = Envelope(channel=Channel.EMAIL, source_id="SM123", received_at=NOW)
    assert a.id == b.id == message_id("whatsapp", "SM123")
    assert a.id != c.id


def test_round_trip_keeps_every_section():
    env = Envelope(
        channel=Channel.CHAT, source_id="c-1", received_at=NOW, text="Où configurer la TVA ?",
        sender=Sender(app_identity=AppIdentity(user_id="u1", account_id="acme")),
        attachments=[Attachment(kind=AttachmentKind.AUDIO, content_type="audio/ogg", size=10,
                                uri="file:///blobs/ab/abcd")],
        transcripts=[Transcript(text="commande MH38", language="fr", confidence=0.8)],
        headers={"Auto-Submitted": "auto-replied"},
    )
    back = Envelope.from_bytes(env.to_bytes())
    assert back == env
    assert back.headers == {"auto-submitted": "auto-replied"}
    assert "commande MH38" in back.full_text()


def test_sender_key_prefers_signed_identity_then_whatsapp_then_phone_then_email():
    def key(**sender):
        return Envelope(channel=Channel.CHAT, source_id="x", received_at=NOW,
                        sender=Sender(**sender)).sender_key

    assert key(app_identity=AppIdentity(user_id="u", account_id="a"), email="x@y.fr") == \
        "chat:app:a:u"
    assert key(whatsapp_id="whatsapp:+33612345678", phone="+33612345678") == \
        "chat:whatsapp:+33612345678"
    assert key(phone="+33612345678", email="x@y.fr") == "chat:+33612345678"
    assert key(email="Jean@Acme.FR") == "chat:jean@acme.fr"


@pytest.mark.parametrize("content_type,kind", [
    ("audio/ogg; codecs=opus", AttachmentKind.AUDIO),
    ("application/ogg", AttachmentKind.AUDIO),
    ("image/jpeg", AttachmentKind.IMAGE),
    ("application/pdf", AttachmentKind.DOCUMENT),
    ("multipart/mixed", AttachmentKind.OTHER),
])
def test_attachment_kind_from_content_type(content_type, kind):
    assert Attachment.kind_for(content_type) is kind


def test_unknown_channel_is_rejected():
    with pytest.raises(ValidationError):
        Envelope(channel="fax", source_id="1", received_at=NOW)


@pytest.mark.parametrize("raw", [b"", b"{not json", b'{"channel": "chat"}', None,
                                 b'{"channel":"fax","source_id":"1","received_at":"2026-01-01T00:00:00Z"}'])
def test_decode_envelope_raises_envelope_error_naming_the_problem(raw):
    with pytest.raises(EnvelopeError) as info:
        decode_envelope(raw)
    assert str(info.value)
