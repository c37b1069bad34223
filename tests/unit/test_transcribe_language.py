"""The customer's language for the transcriber: the identity identification attached."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.envelope import Channel, Envelope, Identity, Sender
from pipeline.transcribe.language import identity_language


def voicemail(phone: str, identity: Identity | None = None) -> Envelope:
    return Envelope(channel=Channel.VOICEMAIL, source_id="RE1", sender=Sender(phone=phone),
                    received_at=datetime(2026, 11, 24, 9, tzinfo=UTC), identity=identity)


def test_the_identified_callers_account_language():
    identified = Identity(identified=True, account_id="ACC-90", language="en")
    assert identity_language(voicemail("+33612345678", identified)) == "en"


def test_unknown_caller_or_account_without_language_gives_none():
    assert identity_language(voicemail("+33612345678", Identity(identified=False))) is None
    assert identity_language(voicemail("+33612345678")) is None
    no_language = Identity(identified=True, account_id="ACC-1")
    assert identity_language(voicemail("+33612345678", no_language)) is None
