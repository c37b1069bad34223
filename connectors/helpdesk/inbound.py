"""The helpdesks' webhooks: signed calls in, ``cases.events`` out, then 202.

A forged or unsigned call gets 401, a malformed one 422; neither produces anything. A call
about something that is not a pipeline case's lifecycle is answered 202 ``ignored`` (the
helpdesk must not retry it). A lifecycle event is acknowledged only after the broker
acknowledged it; otherwise 503, and the helpdesk delivers it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from connectors.helpdesk.config import HelpdeskConfig
from connectors.helpdesk.errors import HelpdeskError
from connectors.helpdesk.lifecycle import Outcome, chatwoot_event, webhook_event, zammad_event
from connectors.helpdesk.signatures import (
    CHATWOOT_SIGNATURE_HEADER,
    CHATWOOT_TIMESTAMP_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    ZAMMAD_SIGNATURE_HEADER,
    verify_timestamped,
    verify_zammad,
)
from connectors.helpdesk.zammad import Zammad
from connectors.hub import ConnectorHub
from pipeline.caseevents import CaseEvent
from pipeline.errors import BrokerError, InvalidPayload, SignatureError
from pipeline.topics import Topic

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
Parse = Callable[[bytes, web.Request], Awaitable[Outcome]]


def install_webhooks(hub: ConnectorHub, config: HelpdeskConfig, zammad: Zammad | None,
                     clock: Callable[[], float] = time.time) -> None:
    """Add one POST endpoint per enabled helpdesk to the hub's web server."""
    if config.zammad.enabled:
        z = config.zammad

        async def parse_zammad(body: bytes, request: web.Request) -> Outcome:
            verify_zammad(body, request.headers.get(ZAMMAD_SIGNATURE_HEADER),
                          z.webhook_secret.get_secret_value())
            outcome = zammad_event(body, z.case_field, z.account_field)
            if outcome.needs_merge_target and outcome.event is not None and zammad is not None:
                target = await zammad.merged_into(outcome.needs_merge_target)
                into = (target or {}).get(z.case_field)
                if not into:
                    return Outcome(ignored="merged into a ticket the pipeline did not open")
                event = outcome.event.model_copy(update={"into_case_id": str(into)})
                return Outcome(event)
            return outcome

        _route(hub, config, z.webhook_path, "zammad", parse_zammad)

    if config.chatwoot.enabled:
        c = config.chatwoot
        check_chatwoot = _timestamped_check(
            c.webhook_secret.get_secret_value(), clock,
            (CHATWOOT_SIGNATURE_HEADER, CHATWOOT_TIMESTAMP_HEADER),
            "helpdesk.chatwoot.webhook_secret")

        async def parse_chatwoot(body: bytes, request: web.Request) -> Outcome:
            check_chatwoot(body, request)
            return chatwoot_event(body, c.case_attribute, c.account_attribute)

        _route(hub, config, c.webhook_path, "chatwoot", parse_chatwoot)

    if config.webhook.enabled:
        w = config.webhook
        check_webhook = _timestamped_check(
            w.secret.get_secret_value(), clock, (WEBHOOK_SIGNATURE_HEADER, TIMESTAMP_HEADER),
            "helpdesk.webhook.secret")

        async def parse_webhook(body: bytes, request: web.Request) -> Outcome:
            check_webhook(body, request)
            return webhook_event(body)

        _route(hub, config, w.webhook_path, "webhook", parse_webhook)


def _timestamped_check(secret: str, clock: Callable[[], float], names: tuple[str, str],
                       setting: str) -> Callable[[bytes, web.Request], None]:
    """A check of a "<timestamp>.<body>" signature carried in the headers ``names``."""

    def check(body: bytes, request: web.Request) -> None:
        verify_timestamped(body, request.headers.get(names[0]), request.headers.get(names[1]),
                           secret, clock(), names=names, setting=setting)

    return check


def _route(hub: ConnectorHub, config: HelpdeskConfig, path: str, helpdesk: str,
           parse: Parse) -> None:
    async def receive(request: web.Request) -> web.Response:
        body = await request.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _answer(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
        try:
            outcome = await parse(body, request)
        except SignatureError as exc:
            log.warning("event=helpdesk_webhook_rejected helpdesk=%s status=401 reason=%r "
                        "remote=%s", helpdesk, str(exc), request.remote)
            return _answer(401, {"error": str(exc)})
        except InvalidPayload as exc:
            log.info("event=helpdesk_webhook_rejected helpdesk=%s status=422 reason=%r",
                     helpdesk, str(exc))
            return _answer(422, {"error": str(exc)})
        except HelpdeskError as exc:  # the merge look-up could not reach the helpdesk
            log.warning("event=helpdesk_webhook_lookup_failed helpdesk=%s error=%r", helpdesk,
                        str(exc)[:200])
            return _answer(503, {"error": "helpdesk look-up failed, retry later"}, 5)
        if outcome.event is None:
            log.info("event=helpdesk_webhook_ignored helpdesk=%s reason=%r", helpdesk,
                     outcome.ignored)
            return _answer(202, {"status": "ignored", "reason": outcome.ignored})
        event = _signed_by(outcome.event, helpdesk)
        try:
            partition, offset = await asyncio.wait_for(
                hub.publisher.send(Topic.CASE_EVENTS, event.case_id,
                                   event.model_dump_json(exclude_none=True).encode()),
                config.publish_timeout_seconds)
        except (BrokerError, TimeoutError) as exc:
            log.error("event=helpdesk_webhook_broker_unavailable helpdesk=%s case_id=%s "
                      "error=%r", helpdesk, event.case_id, str(exc))
            return _answer(503, {"error": "broker unavailable, retry later"}, 5)
        log.info("event=case_event_received helpdesk=%s case_id=%s kind=%s partition=%s "
                 "offset=%s", helpdesk, event.case_id, event.event, partition, offset)
        return _answer(202, {"status": "accepted", "case_id": event.case_id,
                             "event": event.event})

    hub.web.router.add_post(path, receive)


def _signed_by(event: CaseEvent, helpdesk: str) -> CaseEvent:
    """``by`` says which helpdesk (and agent) the event came from."""
    return event.model_copy(update={"by": f"{helpdesk}:{event.by}" if event.by else helpdesk})


def _answer(status: int, payload: dict[str, object], retry_after: int | None = None
            ) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return web.json_response(payload, status=status, headers=headers)
