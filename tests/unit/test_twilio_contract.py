"""The Twilio connectors' pure parts: webhook form, business hours, voicemail envelopes,
signatures (computed by the real twilio SDK)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from twilio.request_validator import RequestValidator

from connectors.twilio.config import BusinessHours, TwilioConfig
from connectors.twilio.media import allowed
from connectors.twilio.messaging import (
    from_webhook,
    is_inbound_whatsapp,
    is_status_callback,
    to_envelope,
)
from connectors.twilio.voicemail import is_open, recording_envelope
from connectors.twilio.webhook import verify
from pipeline.errors import InvalidPayload, SignatureError

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TOKEN = "9c1e5a7d2b4f6e8a0c3d5f7b9e1a2c4d"
URL = "https://support.example.com/hooks/twilio/whatsapp"


def test_webhook_form_becomes_an_envelope() -> None:
    message = from_webhook({
        "MessageSid": "SM1", "From": "whatsapp:+33612345678", "To": "whatsapp:+33186950000",
        "ProfileName": "Claire Martin", "Body": "Où en est la commande X45Q ?", "NumMedia": "1",
        "MediaUrl0": "https://api.twilio.com/m/ME1", "MediaContentType0": "audio/ogg",
        "OriginalRepliedMessageSid": "SM0"})
    env = to_envelope(message, NOW)
    assert (env.channel, env.source_id, env.text) == ("whatsapp", "SM1",
                                                      "Où en est la commande X45Q ?")
    assert env.sender.phone == "+33612345678"
    assert env.sender.whatsapp_id == "whatsapp:+33612345678"
    assert env.thread.in_reply_to == "SM0"
    assert [(m.url, m.content_type) for m in message.media] == [
        ("https://api.twilio.com/m/ME1", "audio/ogg")]


@pytest.mark.parametrize("form", [{"From": "whatsapp:+33612345678"}, {"MessageSid": "SM1"},
                                  {"MessageSid": "SM1", "From": "x", "NumMedia": "deux"}])
def test_webhook_form_missing_essentials_is_refused(form: dict[str, str]) -> None:
    with pytest.raises(InvalidPayload):
        from_webhook(form)


@pytest.mark.parametrize(("direction", "sender", "to", "expected"), [
    ("inbound", "whatsapp:+33612345678", "whatsapp:+33186950000", True),
    ("outbound-api", "whatsapp:+33186950000", "whatsapp:+33612345678", False),
    ("inbound", "+33612345678", "+33186950000", False),  # SMS, not WhatsApp
    ("inbound", "whatsapp:+33612345678", "whatsapp:+33999999999", False),  # other number
])
def test_which_listed_messages_are_ours(direction: str, sender: str, to: str,
                                        expected: bool) -> None:
    assert is_inbound_whatsapp(direction, sender, to, "whatsapp:+33186950000") is expected


@pytest.mark.parametrize(("utc", "expected"), [
    (datetime(2026, 11, 24, 8, 29, tzinfo=UTC), False),  # Tue 9:29 Paris (UTC+1)
    (datetime(2026, 11, 24, 8, 30, tzinfo=UTC), True),   # Tue 9:30
    (datetime(2026, 11, 24, 17, 59, tzinfo=UTC), True),  # Tue 18:59
    (datetime(2026, 11, 24, 18, 0, tzinfo=UTC), False),  # Tue 19:00
    (datetime(2026, 7, 7, 16, 30, tzinfo=UTC), True),    # Tue 18:30 in summer (UTC+2)
    (datetime(2026, 7, 7, 17, 30, tzinfo=UTC), False),   # Tue 19:30 in summer
    (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), False),  # Saturday
    (datetime(2026, 12, 25, 10, 0, tzinfo=UTC), False),  # Friday, but Christmas (closed)
])
def test_business_hours_of_the_line(utc: datetime, expected: bool) -> None:
    hours = BusinessHours(closed_dates=["2026-12-25"])
    assert is_open(utc, hours) is expected


def test_business_hours_config_errors_are_explained() -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        BusinessHours(open="9h30")
    with pytest.raises(ValueError, match="unknown weekday"):
        BusinessHours(days=["lundi"])


@pytest.mark.parametrize(("status", "duration", "source_id", "reason", "audio"), [
    ("completed", 12, "RE1", "completed", True),
    ("completed", 0, "CA1", "empty", False),
    ("absent", 0, "CA1", "absent", False),
    ("failed", 0, "CA1", "failed", False),
])
def test_recording_callback_envelopes(status: str, duration: int, source_id: str, reason: str,
                                      audio: bool) -> None:
    env, url = recording_envelope(
        {"CallSid": "CA1", "RecordingSid": "RE1", "RecordingStatus": status,
         "RecordingDuration": str(duration), "RecordingUrl": "https://api.twilio.com/r/RE1"},
        {"caller": "+33612345678", "line": "+33186950001", "hours": "closed"}, NOW)
    assert env.channel == "voicemail" and env.source_id == source_id
    assert env.headers["x-voicemail-recording"] == reason
    assert env.headers["x-voicemail-hours"] == "closed"
    assert env.sender.phone == "+33612345678"
    assert (url is not None) is audio


def test_signature_computed_by_the_sdk_verifies_and_tampering_fails() -> None:
    params = {"MessageSid": "SM1", "Body": "Bonjour", "From": "whatsapp:+33612345678"}
    signature = RequestValidator(TOKEN).compute_signature(URL, params)
    verify(URL, params, {"X-Twilio-Signature": signature}, TOKEN)
    for url, form in [(URL.replace("hooks", "other"), params),
                      (URL, {**params, "Body": "Bonjour !"})]:
        with pytest.raises(SignatureError):
            verify(url, form, {"X-Twilio-Signature": signature}, TOKEN)
    with pytest.raises(SignatureError, match="missing"):
        verify(URL, params, {}, TOKEN)


def test_shared_key_sha256_signature() -> None:
    params = {"MessageSid": "SM1", "Body": "Hello"}
    key = "webhooks-shared-secret"
    signature = RequestValidator(key).compute_signature(URL, params, "HMAC_SHA256")
    headers = {"X-Twilio-Signature": signature,
               "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm="
                                                        "HMAC_SHA256"}
    verify(URL, params, headers, TOKEN, shared_key=key)
    with pytest.raises(SignatureError):
        verify(URL, params, headers, TOKEN)  # the auth token did not sign it


@pytest.mark.parametrize(("ctype", "ok"), [
    ("audio/ogg; codecs=opus", True), ("image/jpeg", True), ("application/pdf", True),
    ("application/x-msdownload", False), ("text/html", False),
])
def test_allowed_media_types(ctype: str, ok: bool) -> None:
    assert allowed(ctype, TwilioConfig().media_allowed_types) is ok


def test_delivery_reports_are_not_customer_messages() -> None:
    assert is_status_callback({"MessageSid": "SM9", "MessageStatus": "delivered",
                               "SmsStatus": "delivered"})
    assert not is_status_callback({"MessageSid": "SM9", "SmsStatus": "received",
                                   "Body": "Bonjour"})
