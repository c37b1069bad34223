"""Twilio's REST API through the ``twilio`` SDK, pointed at ``api_base_url``.

The SDK's client is synchronous (requests); calls run in a worker thread so the webhooks
keep being served. Its errors become ``TwilioApiError`` here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import requests
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from connectors.twilio.config import TwilioConfig
from connectors.twilio.messaging import InboundWhatsApp, MediaRef, is_inbound_whatsapp
from pipeline.errors import ConnectorError

T = TypeVar("T")


class TwilioApiError(ConnectorError):
    """Twilio's REST API could not be reached or refused a request."""


def client(config: TwilioConfig) -> Client:
    twilio = Client(config.account_sid, config.auth_token.get_secret_value())
    # Every api.twilio.com URL the SDK builds (pages included) starts from this domain.
    twilio.api.base_url = config.api_base_url.rstrip("/")
    return twilio


async def call(fn: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(fn)
    except (TwilioException, requests.RequestException) as exc:
        raise TwilioApiError(f"Twilio REST API: {exc}") from exc


def list_inbound_whatsapp(twilio: Client, config: TwilioConfig, since: datetime,
                          ) -> list[InboundWhatsApp]:
    """Messages Twilio received since ``since`` (all pages), oldest first, with media URLs."""
    base = config.api_base_url.rstrip("/")
    kwargs = {"date_sent_after": since, "page_size": config.reconcile_page_size}
    if config.whatsapp_number:
        kwargs["to"] = config.whatsapp_number
    found: list[InboundWhatsApp] = []
    for msg in twilio.messages.list(**kwargs):  # type: ignore[arg-type]
        if not is_inbound_whatsapp(msg.direction, msg.from_, msg.to, config.whatsapp_number):
            continue
        media = []
        if int(msg.num_media or 0) > 0:
            for item in twilio.messages(msg.sid).media.list():
                # The resource URI ends in .json; without it Twilio serves the file itself.
                uri = (item.uri or "").removesuffix(".json")
                media.append(MediaRef(base + uri, item.content_type or ""))
        found.append(InboundWhatsApp(
            message_sid=msg.sid or "", sender=msg.from_ or "", to=msg.to or "",
            body=msg.body or "", media=media, account_sid=msg.account_sid or "",
            sent_at=msg.date_sent or msg.date_created, via="reconcile"))
    found.sort(key=lambda m: m.sent_at or since)
    return found


def call_recordings(twilio: Client, call_sid: str) -> list[tuple[str, int]]:
    """(RecordingSid, duration in seconds) of a call's recordings."""
    return [(r.sid or "", int(r.duration or 0))
            for r in twilio.recordings.list(call_sid=call_sid, page_size=20)]
