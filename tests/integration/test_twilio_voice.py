"""The voicemail line in a real ConnectorHub against the session broker.

Webhooks are signed by the real ``twilio`` SDK (RequestValidator.compute_signature) for the
public URL; the ``twilio_cloud`` fixture, a local HTTP server speaking Twilio's documented
REST contract (Recordings .wav/.mp3, Recordings list JSON), stands in for Twilio's cloud and
the connector's real ``twilio`` Client is pointed at it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from pipeline.blobstore import BlobStore
from tests.integration.twilio_helpers import (
    CUSTOMER,
    PUBLIC,
    TUESDAY_10H_PARIS,
    call_form,
    make_hub,
    post_signed,
    recording_form,
    spoken_wav,
    twilio_settings,
)


async def incoming_call(hub, call_sid: str) -> ET.Element:  # type: ignore[no-untyped-def]
    status, body, ctype = await post_signed(hub, "/twilio/voice", call_form(call_sid))
    assert status == 200 and ctype == "application/xml"
    return ET.fromstring(body)


def local_path(callback: str) -> str:
    """What the reverse proxy forwards: the public URL minus its base."""
    assert callback.startswith(PUBLIC)
    return callback.removeprefix(PUBLIC)


@pytest.mark.parametrize(("now", "open_now"), [
    (TUESDAY_10H_PARIS, True),
    (datetime(2026, 11, 24, 18, 30, tzinfo=UTC), False),  # Tuesday 19:30 in Paris
    (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), False),  # Saturday
])
async def test_incoming_call_greets_then_records(settings, twilio_cloud, now, open_now):
    cfg = twilio_settings(settings, twilio_cloud)
    async with make_hub(cfg, clock=lambda: now) as hub:
        twiml = await incoming_call(hub, "CA0001")
    say, record, hangup = list(twiml)
    assert say.tag == "Say" and say.get("language") == "fr-FR"
    voice = cfg.twilio.voice
    assert say.text == (voice.greeting if open_now else voice.greeting_closed)
    if not open_now:
        assert "du lundi au vendredi" in say.text
    assert record.tag == "Record" and hangup.tag == "Hangup"
    assert record.get("maxLength") == "180" and record.get("playBeep") == "true"
    assert record.get("recordingStatusCallbackEvent") == "completed absent"
    callback = urlsplit(record.get("recordingStatusCallback"))
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == (
        f"{PUBLIC}/twilio/voice/recording")
    assert "caller=%2B33612345678" in callback.query
    assert f"hours={'open' if open_now else 'closed'}" in callback.query
    assert record.get("action") == f"{PUBLIC}/twilio/voice/recorded"


async def test_recording_callback_produces_voicemail_with_audio(settings, kafka_io,
                                                                twilio_cloud, tmp_path):
    audio = spoken_wav(tmp_path, "Bonjour, c'est Claire Martin de la boutique Hangers Lyon. "
                                 "La commande MH38 n'est jamais arrivée, merci de me rappeler.")
    url = twilio_cloud.add_recording("CA0002", "RE0002", audio, duration=6)
    cfg = twilio_settings(settings, twilio_cloud)
    async with make_hub(cfg, clock=lambda: TUESDAY_10H_PARIS) as hub:
        twiml = await incoming_call(hub, "CA0002")
        callback = local_path(twiml.find("Record").get("recordingStatusCallback"))
        status, _, _ = await post_signed(hub, callback, recording_form("CA0002", "RE0002", url,
                                                                       duration=6))
        # <Record> ends: Twilio asks its action what to do next → hang up.
        action = local_path(twiml.find("Record").get("action"))
        after, hang_up, _ = await post_signed(hub, action, {
            **call_form("CA0002"), "RecordingUrl": url, "RecordingDuration": "6",
            "Digits": "hangup"})
        assert after == 200 and "<Hangup" in hang_up
        # Twilio then tells us the call completed: it has a recording, nothing more to do.
        done, _, _ = await post_signed(hub, "/twilio/voice/status", {
            **call_form("CA0002"), "CallStatus": "completed", "CallDuration": "14"})
    assert status == 200 and done == 200
    records = await kafka_io.read("inbound.raw", count=1, quiet=1.0)
    assert len(records) == 1
    env = records[0].value
    assert env["channel"] == "voicemail" and env["source_id"] == "RE0002"
    assert env["sender"]["phone"] == CUSTOMER
    assert records[0].key == f"voicemail:{CUSTOMER}"
    assert env["headers"]["x-voicemail-recording"] == "completed"
    assert env["headers"]["x-voicemail-duration-s"] == "6"
    assert env["headers"]["x-twilio-call-sid"] == "CA0002"
    [att] = env["attachments"]
    assert att["kind"] == "audio" and att["content_type"] == "audio/x-wav"
    assert BlobStore(cfg.blobs.url).get(att["uri"]) == audio
    assert twilio_cloud.hits("/Recordings/RE0002.wav") == 1


async def test_mp3_format_is_fetched_when_configured(settings, kafka_io, twilio_cloud, tmp_path):
    audio = spoken_wav(tmp_path, "Hello, this is about invoice INV-2026-118.")
    url = twilio_cloud.add_recording("CA0005", "RE0005", audio, duration=3)
    cfg = twilio_settings(settings, twilio_cloud)
    cfg.twilio.voice.recording_format = "mp3"
    async with make_hub(cfg) as hub:
        status, _, _ = await post_signed(
            hub, "/twilio/voice/recording?caller=%2B442071838750&line=%2B33186950001",
            recording_form("CA0005", "RE0005", url, duration=3))
    assert status == 200
    env = (await kafka_io.read("inbound.raw", count=1))[0].value
    assert env["sender"]["phone"] == "+442071838750"
    assert env["attachments"][0]["content_type"] == "audio/mpeg"
    assert twilio_cloud.hits("/Recordings/RE0005.mp3") == 1


async def test_calls_without_a_recording_are_still_produced(settings, kafka_io, twilio_cloud):
    """Hung up during the greeting (status callback, no recording at Twilio), silence only
    (recording callback ``absent``), and a zero-length recording: one message each, no
    audio, the reason in ``x-voicemail-recording``."""
    cfg = twilio_settings(settings, twilio_cloud)
    async with make_hub(cfg, clock=lambda: TUESDAY_10H_PARIS) as hub:
        hung_up = await post_signed(hub, "/twilio/voice/status", {
            **call_form("CA0003"), "CallStatus": "completed", "CallDuration": "3"})
        twiml = await incoming_call(hub, "CA0004")
        callback = local_path(twiml.find("Record").get("recordingStatusCallback"))
        silent = await post_signed(hub, callback, recording_form(
            "CA0004", "RE0004", "", status="absent", duration=0))
        # Twilio's call-completed callback for the same silent call: same CallSid.
        silent_done = await post_signed(hub, "/twilio/voice/status", {
            **call_form("CA0004"), "CallStatus": "completed", "CallDuration": "9"})
        empty = await post_signed(hub, callback, recording_form(
            "CA0006", "RE0006", f"{twilio_cloud.url}/x", status="completed", duration=0))
    assert [hung_up[0], silent[0], silent_done[0], empty[0]] == [200, 200, 200, 200]
    records = await kafka_io.read("inbound.raw", count=4)
    by_reason = [(r.value["source_id"], r.value["headers"]["x-voicemail-recording"])
                 for r in records]
    assert by_reason == [("CA0003", "none"), ("CA0004", "absent"), ("CA0004", "none"),
                         ("CA0006", "empty")]
    for record in records:
        env = record.value
        assert env["channel"] == "voicemail" and env.get("attachments", []) == []
        assert env["sender"]["phone"] == CUSTOMER and env.get("text", "") == ""
        assert "without a voice message" in env["notes"][0]
    # CA0004 twice with one source_id: ingest keeps one (idempotency by channel + CallSid).
    assert twilio_cloud.hits("CallSid=CA0003") == 1


async def test_forged_voice_callbacks_are_refused(settings, kafka_io, twilio_cloud):
    async with make_hub(twilio_settings(settings, twilio_cloud)) as hub:
        call = await post_signed(hub, "/twilio/voice", call_form("CA0009"), token="f" * 32)
        rec = await post_signed(hub, "/twilio/voice/recording?caller=%2B33612345678",
                                recording_form("CA0009", "RE0009", "x"), token=None)
        status = await post_signed(hub, "/twilio/voice/status", {
            **call_form("CA0009"), "CallStatus": "completed"}, token="f" * 32)
        genuine = await post_signed(hub, "/twilio/voice/status", {
            **call_form("CA0010"), "CallStatus": "completed"})
    assert [call[0], rec[0], status[0], genuine[0]] == [403, 403, 403, 200]
    # Same caller, same partition: a forged message would have come before the genuine one.
    records = await kafka_io.read("inbound.raw", count=1, quiet=1.0)
    assert [r.value["source_id"] for r in records] == ["CA0010"]
