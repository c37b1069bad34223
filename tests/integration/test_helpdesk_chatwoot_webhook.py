"""Chatwoot and the generic signed webhook, on the real broker.

Chatwoot is the local contract server of tests/fixtures/helpdesks.py, written from
Chatwoot's public API documentation (no Chatwoot runs here); the generic webhook's
receiver is a small aiohttp server checking the documented signature (docs/helpdesk.md).
"""

from __future__ import annotations

import json
import time

from aiohttp import web

from connectors.helpdesk.signatures import sign_timestamped, verify_timestamped
from pipeline.topics import Topic
from tests.fixtures.helpdesks import ChatwootServer, ZammadServer
from tests.fixtures.kafka_io import KafkaIO
from tests.integration.helpdesk_helpers import (
    chatwoot_headers,
    create_queues,
    helpdesk_settings,
    post,
    routed,
    running_hub,
    wait_until,
)


async def test_billing_goes_to_chatwoot_and_its_resolution_closes_the_case(
        settings, kafka_io: KafkaIO, zammad: ZammadServer, chatwoot: ChatwootServer):
    settings = helpdesk_settings(settings, zammad, chatwoot)  # billing → chatwoot, * → zammad
    await create_queues(settings, "billing", "tech")
    await kafka_io.create_topics()
    invoice = routed(21, queue="billing", priority="normal",
                     text="Bonjour, la facture FAC-2026-0412 est comptée deux fois.")
    again = routed(22, queue="billing", priority="normal", action="merged",
                   case_id=invoice.case.case_id,  # type: ignore[union-attr]
                   text="Je joins le relevé bancaire, merci de rembourser.")
    bug = routed(23, queue="tech", text="L'imprimante ne sort plus les tickets.")
    await kafka_io.produce("queue.billing", [(invoice.case.case_id, e.to_bytes())  # type: ignore[union-attr]
                                             for e in (invoice, again, again)])
    await kafka_io.produce("queue.tech", [(bug.case.case_id, bug.to_bytes())])  # type: ignore[union-attr]
    async with running_hub(settings) as hub:
        await wait_until(lambda: len(chatwoot.messages.get(1, [])) == 2 and zammad.tickets)
        conv = chatwoot.conversations[1]
        assert conv["custom_attributes"]["support_case_id"] == invoice.case.case_id  # type: ignore[union-attr]
        assert conv["priority"] == "medium" and conv["inbox_id"] == chatwoot.inbox_id
        assert "FAC-2026-0412" in chatwoot.messages[1][0]["content"]
        assert chatwoot.messages[1][1]["message_type"] == "incoming"
        assert len(chatwoot.contacts) == 1 and len(chatwoot.conversations) == 1
        assert [t["support_case_id"] for t in zammad.tickets.values()] == [bug.case.case_id]  # type: ignore[union-attr]

        body = chatwoot.status_changed_body(1, "resolved")
        status, answer = await post(hub, "/helpdesk/chatwoot", body, chatwoot_headers(body))
        assert (status, answer["event"]) == (202, "closed")
    events = await kafka_io.read(Topic.CASE_EVENTS, count=1, timeout=30)
    assert events[0].key == invoice.case.case_id  # type: ignore[union-attr]
    assert events[0].value["account_id"] == invoice.sender.app_identity.account_id  # type: ignore[union-attr]


async def test_the_generic_webhook_is_signed_retried_and_answered_back(settings,
                                                                       kafka_io: KafkaIO):
    secret = "shared-with-the-tool"
    received: list[dict] = []  # type: ignore[type-arg]
    failures = {"left": 2}

    async def tool(request: web.Request) -> web.Response:
        body = await request.read()
        verify_timestamped(body, request.headers.get("X-Pipeline-Signature"),
                           request.headers.get("X-Pipeline-Timestamp"), secret, time.time(),
                           names=("X-Pipeline-Signature", "X-Pipeline-Timestamp"), setting="t")
        if failures["left"]:
            failures["left"] -= 1
            return web.json_response({"error": "busy"}, status=503,
                                     headers={"Retry-After": "0"})
        received.append({**json.loads(body), "key": request.headers["Idempotency-Key"]})
        return web.json_response({"ticket_id": f"T-{len(received)}"}, status=201)

    app = web.Application()
    app.router.add_post("/hook", tool)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        settings = helpdesk_settings(settings, webhook={
            "enabled": True, "url": f"http://127.0.0.1:{port}/hook", "secret": secret})
        await create_queues(settings, "general")
        await kafka_io.create_topics()
        case = routed(31, queue="general", priority="normal",
                      text="Can you add a second employee to our account? Thanks.")
        await kafka_io.produce("queue.general", [(case.case.case_id, case.to_bytes())])  # type: ignore[union-attr]
        async with running_hub(settings) as hub:
            await wait_until(lambda: bool(received))
            assert received[0]["event"] == "case.opened" and received[0]["key"] == case.id
            assert received[0]["customer"]["account_id"] == case.sender.app_identity.account_id  # type: ignore[union-attr]
            callback = json.dumps({"event": "closed", "case_id": case.case.case_id,  # type: ignore[union-attr]
                                   "account_id": received[0]["customer"]["account_id"]}).encode()
            stamp = str(int(time.time()))
            status, _ = await post(hub, "/helpdesk/webhook", callback, {
                "X-Pipeline-Timestamp": stamp,
                "X-Pipeline-Signature": sign_timestamped(callback, stamp, "wrong")})
            assert status == 401
            status, _ = await post(hub, "/helpdesk/webhook", callback, {
                "X-Pipeline-Timestamp": stamp,
                "X-Pipeline-Signature": sign_timestamped(callback, stamp, secret)})
            assert status == 202
        assert failures["left"] == 0 and len(received) == 1
    finally:
        await runner.cleanup()
    events = await kafka_io.read(Topic.CASE_EVENTS, count=1, timeout=30)
    assert (events[0].value["event"], events[0].value["by"]) == ("closed", "webhook")
