"""The voicemail line through Twilio Voice: TwiML for calls, recordings into envelopes.

Routes (all signature-checked):
* ``voice.path``: incoming call → greeting (in or out of hours) + <Record>;
* ``voice.path``/recorded: <Record>'s action → hang up;
* ``voice.recording_path``: recording status callback → download, store, produce;
* ``voice.status_path``: the number's call status callback → a call that ended with no
  recording at all (hung up during the greeting) is still produced.
"""

from __future__ import annotations

import logging

import aiohttp
import mode
from aiohttp import web

from connectors.hub import ConnectorHub
from connectors.twilio import rest
from connectors.twilio.media import MediaFetcher
from connectors.twilio.voicemail import (
    FINAL_CALL_STATUSES,
    hang_up_twiml,
    incoming_call_twiml,
    is_open,
    recording_callback_query,
    recording_envelope,
    silent_call_envelope,
)
from connectors.twilio.webhook import (
    TWIML,
    callback_url,
    empty_twiml,
    forbidden,
    publish,
    retry_later,
    signed_form,
)
from pipeline.envelope import Envelope
from pipeline.errors import BrokerError, InvalidPayload, SignatureError

log = logging.getLogger(__name__)

_AUDIO_TYPES = {"wav": "audio/x-wav", "mp3": "audio/mpeg"}


class VoiceService(mode.Service):
    """Owns the HTTP session that downloads recordings."""

    def __init__(self, hub: ConnectorHub, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        config = hub.settings.twilio
        # Recordings have their own limit (bounded by max_length) and are always audio.
        self.media = MediaFetcher(config, hub.blobs, max_bytes=config.voice.recording_max_bytes,
                                  allowed_types=["audio/*"])
        self.session: aiohttp.ClientSession | None = None

    async def on_start(self) -> None:
        self.session = aiohttp.ClientSession()

    async def on_stop(self) -> None:
        if self.session is not None:
            await self.session.close()


def install(hub: ConnectorHub) -> None:
    config = hub.settings.twilio
    voice = config.voice
    service = VoiceService(hub)
    hub.add_service(service)
    record_done_path = voice.path.rstrip("/") + "/recorded"

    async def produce(envelope: Envelope, what: str) -> web.Response:
        try:
            await publish(hub.publisher, envelope, config.publish_timeout_seconds)
        except BrokerError as exc:
            log.error("event=voicemail_broker_unavailable message_id=%s error=%r", envelope.id,
                      str(exc))
            return retry_later("broker unavailable, retry later")
        log.info("event=voicemail_accepted kind=%s message_id=%s source_id=%s recording=%s",
                 what, envelope.id, envelope.source_id,
                 envelope.headers.get("x-voicemail-recording"))
        return empty_twiml()

    async def incoming_call(request: web.Request) -> web.Response:
        try:
            form = await signed_form(request, config)
        except SignatureError as exc:
            return forbidden(request, exc, "voice")
        open_now = is_open(hub.now(), voice.business_hours)
        callback = callback_url(config.public_base_url, voice.recording_path)
        twiml = incoming_call_twiml(
            voice, open_now=open_now,
            recording_callback=f"{callback}?{recording_callback_query(form, open_now)}",
            record_done=callback_url(config.public_base_url, record_done_path))
        log.info("event=voice_call call_sid=%s hours=%s", form.get("CallSid"),
                 "open" if open_now else "closed")
        return web.Response(text=twiml, content_type=TWIML)

    async def record_done(request: web.Request) -> web.Response:
        try:
            await signed_form(request, config)
        except SignatureError as exc:
            return forbidden(request, exc, "voice")
        return web.Response(text=hang_up_twiml(), content_type=TWIML)

    async def recording_status(request: web.Request) -> web.Response:
        try:
            form = await signed_form(request, config)
            envelope, audio_url = recording_envelope(form, request.query, hub.now())
        except SignatureError as exc:
            return forbidden(request, exc, "voice")
        except InvalidPayload as exc:
            return web.Response(status=400, text=f"{exc}\n")
        if audio_url is not None:
            assert service.session is not None
            fmt = voice.recording_format
            attachment = await service.media.attachment(
                service.session, f"{audio_url}.{fmt}", _AUDIO_TYPES[fmt],
                message_id=envelope.id, filename=f"{envelope.source_id}.{fmt}")
            envelope.attachments.append(attachment)
            if attachment.error:
                envelope.notes.append(f"recording not kept: {attachment.error}")
        return await produce(envelope, "recording")

    async def call_status(request: web.Request) -> web.Response:
        try:
            form = await signed_form(request, config)
        except SignatureError as exc:
            return forbidden(request, exc, "voice")
        status, call_sid = form.get("CallStatus", ""), form.get("CallSid", "")
        if status not in FINAL_CALL_STATUSES or not call_sid:
            return empty_twiml()
        note = None
        try:
            twilio = rest.client(config)
            recordings = await rest.call(lambda: rest.call_recordings(twilio, call_sid))
        except rest.TwilioApiError as exc:
            # Cannot tell: produce anyway. A spare "silent call" is quarantined by the spam
            # filter; a lost call cannot be found again.
            recordings, note = [], f"recordings could not be checked: {exc}"
        if recordings:
            return empty_twiml()  # the recording status callback produces this call
        envelope = silent_call_envelope(call_sid, form.get("From", ""), form.get("To", ""),
                                        hub.now(), "none", form.get("CallerName"))
        envelope.headers["x-twilio-call-status"] = status
        if note:
            envelope.notes.append(note)
        return await produce(envelope, "call_without_recording")

    hub.web.router.add_post(voice.path, incoming_call)
    hub.web.router.add_post(record_done_path, record_done)
    hub.web.router.add_post(voice.recording_path, recording_status)
    hub.web.router.add_post(voice.status_path, call_status)
