"""Helpers for the Twilio connector tests: settings, a running hub, signed webhook posts."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from twilio.request_validator import RequestValidator

from connectors.hub import ConnectorHub
from connectors.twilio.config import TwilioConfig
from pipeline.kafka import ensure_topics
from pipeline.settings import Settings
from tests.fixtures.twilio_cloud import ACCOUNT_SID, AUTH_TOKEN, TwilioCloud

# The public URL Twilio is configured with; a reverse proxy forwards /hooks/* to the hub.
PUBLIC = "https://support.example.com/hooks"
OUR_NUMBER = "whatsapp:+33186950000"
CUSTOMER = "+33612345678"
# A Tuesday, 10:00 in Paris: the line is open.
TUESDAY_10H_PARIS = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def twilio_settings(settings: Settings, cloud: TwilioCloud, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        enabled=True, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
        public_base_url=PUBLIC, api_base_url=cloud.url, whatsapp_number=OUR_NUMBER,
        media_max_bytes=200_000, media_attempts=3, media_backoff_seconds=0.05,
        reconcile_interval_seconds=0, reconcile_page_size=1, publish_timeout_seconds=3)
    twilio = TwilioConfig.model_validate({**values, **overrides})
    return settings.model_copy(update={"twilio": twilio})


@asynccontextmanager
async def make_hub(settings: Settings, *, clock: Callable[[], datetime] | None = None,
                   create_topics: bool = True) -> AsyncIterator[ConnectorHub]:
    """The hub with both Twilio connectors, started in the test's loop (port from the OS)."""
    if create_topics:
        await ensure_topics(settings.kafka)
    hub = ConnectorHub(settings, ["whatsapp", "voice"],
                       **({"clock": clock} if clock else {}))
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


async def post_signed(hub: ConnectorHub, path: str, params: dict[str, str], *,
                      token: str | None = AUTH_TOKEN, public_base: str = PUBLIC
                      ) -> tuple[int, str, str]:
    """POST a form as Twilio does, X-Twilio-Signature computed by the twilio SDK for the
    public URL; ``path`` may carry a query string (Twilio signs it too)."""
    headers = {}
    if token is not None:
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(
            public_base + path, params)
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{hub.port}{path}", data=params, headers=headers) as resp:
        return resp.status, await resp.text(), resp.content_type


def whatsapp_form(sid: str, body: str, media: list[tuple[str, str]] | None = None,
                  sender: str = CUSTOMER) -> dict[str, str]:
    """The Messaging webhook's parameters for an inbound WhatsApp message."""
    media = media or []
    form = {
        "SmsMessageSid": sid, "MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID,
        "From": f"whatsapp:{sender}", "To": OUR_NUMBER, "WaId": sender.lstrip("+"),
        "ProfileName": "Claire Martin", "Body": body, "NumMedia": str(len(media)),
        "NumSegments": "1", "ReferralNumMedia": "0", "SmsStatus": "received",
        "MessageType": "text" if not media else media[0][1].split("/")[0],
        "ApiVersion": "2010-04-01",
    }
    for i, (url, ctype) in enumerate(media):
        form[f"MediaUrl{i}"] = url
        form[f"MediaContentType{i}"] = ctype
    return form


def ogg_voice_note(tmp: Path) -> bytes:
    """A real OGG/Opus file, as WhatsApp voice notes are (a short tone made by ffmpeg)."""
    out = tmp / "note.ogg"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-c:a", "libopus", "-y", str(out)],
                   check=True, timeout=60)
    return out.read_bytes()


def spoken_wav(tmp: Path, text: str) -> bytes:
    """A WAV of French speech (espeak-ng), standing in for a caller's voicemail."""
    out = tmp / "voicemail.wav"
    subprocess.run(["espeak-ng", "-v", "fr", "-w", str(out), text], check=True, timeout=60)
    return out.read_bytes()


LINE = "+33186950001"


def call_form(call_sid: str, caller: str = CUSTOMER) -> dict[str, str]:
    return {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": caller, "To": LINE,
            "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01",
            "Caller": caller, "Called": LINE, "FromCountry": "FR", "ToCountry": "FR"}


def recording_form(call_sid: str, recording_sid: str, url: str, status: str = "completed",
                   duration: int = 4) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "RecordingSid": recording_sid,
            "RecordingUrl": url, "RecordingStatus": status,
            "RecordingDuration": str(duration), "RecordingChannels": "1",
            "RecordingSource": "RecordVerb",
            "RecordingStartTime": "Tue, 24 Nov 2026 09:00:12 +0000"}


VOICEMAIL_DIRECTORY = f"""\
accounts:
  - id: ACC-77
    name: Hangers Lyon
    country: FR
    language: fr
    employees:
      - id: EMP-77-1
        name: Claire Martin
        phones: ["{CUSTOMER}"]
"""
SAID = ("Bonjour, c'est Claire Martin de Hangers Lyon. La caisse affiche une erreur depuis ce "
        "matin, rappelez-moi s'il vous plaît.")


def phone_wav(tmp: Path, name: str, text: str | None, *, backwards: bool = False) -> bytes:
    """8 kHz phone-band WAV of French speech (espeak-ng), or 4 s of silence."""
    out = tmp / f"{name}.wav"
    if text is None:
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(out), "trim", "0",
                        "4"], check=True, timeout=60)
        return out.read_bytes()
    wide = tmp / f"{name}-22k.wav"
    subprocess.run(["espeak-ng", "-v", "fr", "-s", "140", "-w", str(wide), text], check=True,
                   timeout=60)
    effects = ["sinc", "300-3400", *(["reverse"] if backwards else [])]
    subprocess.run(["sox", str(wide), "-r", "8000", "-c", "1", "-b", "16", str(out), *effects],
                   check=True, timeout=60)
    return out.read_bytes()


async def leave_voicemail(hub, cloud, call_sid: str, audio: bytes,  # type: ignore[no-untyped-def]
                          seconds: int, caller: str = CUSTOMER) -> None:
    recording_sid = f"RE{call_sid[2:]}"
    url = cloud.add_recording(call_sid, recording_sid, audio, duration=seconds)
    status, _, _ = await post_signed(hub, "/twilio/voice", call_form(call_sid))
    assert status == 200
    status, body, _ = await post_signed(
        hub, f"/twilio/voice/recording?caller=%2B{caller[1:]}&line=%2B{LINE[1:]}",
        recording_form(call_sid, recording_sid, url, duration=seconds))
    assert status in (200, 204), body
