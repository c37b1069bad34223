"""WhatsApp through Twilio: the Messaging webhook, and reconciliation against the REST API.

Webhook: signed form in → media downloaded into the blob store → envelope on
``inbound.raw`` → only then 200 + empty TwiML. Broker trouble → 503 (Twilio retries);
duplicates of one MessageSid are dropped downstream by ingest (source_id = MessageSid).

Reconciliation (``pipeline connector whatsapp --reconcile`` and a periodic task in the
connector process) lists what Twilio received since the last checkpoint and publishes
it again; what the webhook already delivered is dropped by ingest as a source retry.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import aiohttp
import mode
from aiohttp import web

from connectors.hub import ConnectorHub, InboundPublisher
from connectors.settings import ConnectorSettings
from connectors.twilio import rest
from connectors.twilio.checkpoint import checkpoint_key, read_checkpoint, save_listing
from connectors.twilio.config import TwilioConfig
from connectors.twilio.media import MediaFetcher
from connectors.twilio.messaging import (
    InboundWhatsApp,
    from_webhook,
    is_status_callback,
    to_envelope,
)
from connectors.twilio.webhook import (
    empty_twiml,
    forbidden,
    publish,
    retry_later,
    signed_form,
)
from pipeline.blobstore import BlobStore
from pipeline.clock import utcnow
from pipeline.envelope import Envelope
from pipeline.errors import BrokerError, InvalidPayload, PipelineError, SignatureError
from pipeline.kafka import AckedProducer, ensure_topics

log = logging.getLogger(__name__)


async def build_envelope(message: InboundWhatsApp, received_at: datetime, media: MediaFetcher,
                         session: aiohttp.ClientSession) -> Envelope:
    """The envelope with every media file stored (or its failure recorded)."""
    envelope = to_envelope(message, received_at)
    for i, ref in enumerate(message.media):
        attachment = await media.attachment(session, ref.url, ref.content_type,
                                            message_id=envelope.id, filename=f"media{i}")
        envelope.attachments.append(attachment)
        if attachment.error:
            envelope.notes.append(f"media{i} not kept: {attachment.error}")
    return envelope


class WhatsAppService(mode.Service):
    """Owns the HTTP session for media and runs reconciliation every so often."""

    def __init__(self, hub: ConnectorHub, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.hub = hub
        self.config: TwilioConfig = hub.settings.twilio
        self.media = MediaFetcher(self.config, hub.blobs)
        self.session: aiohttp.ClientSession | None = None

    async def on_start(self) -> None:
        self.session = aiohttp.ClientSession()
        if self.config.reconcile_interval_seconds > 0:
            self.add_future(self._reconcile_periodically())

    async def on_stop(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def _reconcile_periodically(self) -> None:
        interval = self.config.reconcile_interval_seconds
        while not self.should_stop:
            await self.sleep(interval)
            if self.should_stop:
                break
            try:
                assert self.session is not None
                await reconcile_once(self.hub.settings, self.hub.publisher, self.hub.producer,
                                     self.media, self.session, self.hub.now())
            except PipelineError as exc:
                log.error("event=whatsapp_reconcile_failed error=%r", str(exc))
            except Exception:  # noqa: BLE001 - a bad pass must not take the webhook down
                log.exception("event=whatsapp_reconcile_crashed")


def install(hub: ConnectorHub) -> None:
    config = hub.settings.twilio
    service = WhatsAppService(hub)
    hub.add_service(service)

    async def receive(request: web.Request) -> web.Response:
        try:
            form = await signed_form(request, config)
        except SignatureError as exc:
            return forbidden(request, exc, "whatsapp")
        if is_status_callback(form):
            log.info("event=whatsapp_status_ignored sid=%s status=%s", form.get("MessageSid"),
                     form.get("MessageStatus") or form.get("SmsStatus"))
            return empty_twiml()
        try:
            message = from_webhook(form)
        except InvalidPayload as exc:
            log.warning("event=whatsapp_rejected status=400 reason=%r", str(exc))
            return web.Response(status=400, text=f"{exc}\n")
        assert service.session is not None
        envelope = await build_envelope(message, hub.now(), service.media, service.session)
        try:
            await publish(hub.publisher, envelope, config.publish_timeout_seconds)
        except BrokerError as exc:
            log.error("event=whatsapp_broker_unavailable message_id=%s sid=%s error=%r",
                      envelope.id, message.message_sid, str(exc))
            return retry_later("broker unavailable, retry later")
        log.info("event=whatsapp_accepted message_id=%s sid=%s media=%d media_errors=%d",
                 envelope.id, message.message_sid, len(envelope.attachments),
                 sum(1 for a in envelope.attachments if a.error))
        return empty_twiml()

    hub.web.router.add_post(config.whatsapp_path, receive)


async def reconcile_once(settings: ConnectorSettings, publisher: InboundPublisher,
                         producer: AckedProducer, media: MediaFetcher,
                         session: aiohttp.ClientSession, now: datetime) -> int:
    """List since the checkpoint, publish every inbound WhatsApp message, move the checkpoint.

    The checkpoint moves only after every listed message was acknowledged, so a crash
    midway lists the same messages again next time (ingest drops the repeats).
    """
    config = settings.twilio
    key = checkpoint_key(config.account_sid, config.whatsapp_number)
    last = await read_checkpoint(settings.kafka, key)
    if last is None:
        since = now - timedelta(hours=config.reconcile_initial_lookback_hours)
    else:
        since = last - timedelta(seconds=config.reconcile_overlap_seconds)
    twilio = rest.client(config)
    messages = await rest.call(lambda: rest.list_inbound_whatsapp(twilio, config, since))
    for message in messages:
        envelope = await build_envelope(message, message.sent_at or now, media, session)
        await publish(publisher, envelope, config.publish_timeout_seconds)
    await save_listing(producer, key, now, len(messages), now)
    log.info("event=whatsapp_reconciled since=%s listed=%d checkpoint=%s", since.isoformat(),
             len(messages), now.isoformat())
    return len(messages)


async def reconcile(settings: ConnectorSettings) -> int:
    """``pipeline connector whatsapp --reconcile``: one pass, then exit (0 on success)."""
    # Run alone, nothing else created the topics yet (connectors.state must be compacted).
    await ensure_topics(settings.kafka)
    async with AckedProducer(settings.kafka) as producer, aiohttp.ClientSession() as session:
        media = MediaFetcher(settings.twilio, BlobStore(settings.blobs.url))
        count = await reconcile_once(settings, InboundPublisher(producer), producer, media,
                                     session, utcnow())
    print(f"whatsapp: {count} message(s) listed by Twilio published to inbound.raw "
          "(ingest drops those already delivered)")
    return 0

