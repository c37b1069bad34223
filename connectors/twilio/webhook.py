"""What every Twilio webhook shares: the signature check, the form, the answers.

Twilio signs each request with HMAC (X-Twilio-Signature) over the *public* URL it called
plus the sorted form parameters. Behind a reverse proxy that URL is not the one this
server sees, so it is rebuilt from ``public_base_url`` + the local path and query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from connectors.hub import InboundPublisher
from connectors.twilio.config import TwilioConfig
from pipeline.envelope import Envelope
from pipeline.errors import BrokerError, SignatureError

log = logging.getLogger(__name__)

TWIML = "application/xml"


def public_url(request: web.Request, public_base_url: str | None) -> str:
    """The URL Twilio called: ``public_base_url`` + local path and query, else as received.

    The raw request target is used, not a re-encoded one: Twilio signs the exact bytes of
    the URL it called (``%2B`` in a query string must stay ``%2B``).
    """
    if public_base_url:
        return public_base_url.rstrip("/") + request.raw_path
    return f"{request.scheme}://{request.host}{request.raw_path}"


def callback_url(public_base_url: str | None, path: str) -> str:
    """A URL to hand to Twilio in TwiML: absolute behind a proxy, else relative to the call."""
    return public_base_url.rstrip("/") + path if public_base_url else path


def verify(url: str, params: Mapping[str, str] | MultiDict[str], headers: Mapping[str, str],
           auth_token: str, shared_key: str | None = None) -> None:
    """Raise SignatureError unless the request carries Twilio's signature for ``url``.

    Legacy signatures are HMAC-SHA1 with the auth token; a request that names its settings
    (``X-Twilio-Webhooks-Signature-Settings``) is checked with the algorithm it names and
    the SharedKey secret when one is configured.
    """
    signature = headers.get(SIGNATURE_HEADER)
    if not signature:
        raise SignatureError("missing X-Twilio-Signature")
    settings_header = headers.get(SIGNATURE_SETTINGS_HEADER)
    secret = shared_key if (settings_header and shared_key) else auth_token
    if not secret:
        raise SignatureError("twilio.auth_token is not configured")
    algorithm = get_signature_algorithm(settings_header)
    if not RequestValidator(secret).validate(url, params, signature, algorithm):
        raise SignatureError(f"X-Twilio-Signature does not match {url}")


async def signed_form(request: web.Request, config: TwilioConfig) -> MultiDict[str]:
    """The form parameters of a request whose signature verifies (SignatureError if not)."""
    form = await request.post()
    params: MultiDict[str] = MultiDict((k, v) for k, v in form.items() if isinstance(v, str))
    shared = config.webhook_shared_key.get_secret_value() if config.webhook_shared_key else None
    verify(public_url(request, config.public_base_url), params, request.headers,
           config.auth_token.get_secret_value(), shared)
    return params


def forbidden(request: web.Request, exc: SignatureError, connector: str) -> web.Response:
    log.warning("event=%s_rejected status=403 reason=%r remote=%s", connector, str(exc),
                request.remote)
    return web.Response(status=403, text="invalid signature\n")


def empty_twiml() -> web.Response:
    """200 with an empty <Response/>: Twilio takes the message as delivered, sends nothing."""
    return web.Response(status=200, text=str(MessagingResponse()), content_type=TWIML)


def retry_later(detail: str) -> web.Response:
    """503: Twilio treats it as a failed delivery (and retries where it does)."""
    return web.Response(status=503, text=detail + "\n", headers={"Retry-After": "5"})


async def publish(publisher: InboundPublisher, envelope: Envelope, timeout: float) -> None:
    """Publish and wait for the broker's ack, within ``timeout`` (BrokerError otherwise)."""
    try:
        await asyncio.wait_for(publisher.publish(envelope), timeout)
    except TimeoutError as exc:
        raise BrokerError(f"broker did not acknowledge within {timeout} s") from exc
