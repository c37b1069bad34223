"""Chat messages over HTTP → connector → inbound.raw → ingest worker → messages.normalized.

Both parts run as real `pipeline` processes against the real (embedded) broker.
"""

from __future__ import annotations

import json
import re
import signal
import socket

import aiohttp
import pytest

from connectors.chat.contract import sign
from tests.fixtures.broker import override, tapped
from tests.fixtures.kafka_io import KafkaIO

pytestmark = pytest.mark.slow

SECRET = "e2e-secret"


def chat_body(message_id: str, text: str, account: str = "acc-hangers-12") -> bytes:
    return json.dumps({
        "message_id": message_id, "conversation_id": "conv-1",
        "sent_at": "2026-11-23T10:15:00+01:00", "text": text, "surface": "selfcare",
        "user": {"id": "u-9", "account_id": account, "email": "claire@boutique.fr",
                 "name": "Claire Martin"},
    }).encode()


def endpoint(proc) -> str:  # type: ignore[no-untyped-def]
    line = proc.wait_for("event=endpoint method=POST")
    return re.search(r"url=(\S+)", line).group(1)


async def post(session: aiohttp.ClientSession, url: str, body: bytes,
               signature: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Pipeline-Signature"] = signature
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, await response.json()


async def test_signed_chat_messages_arrive_once_and_rejects_produce_nothing(
        settings, kafka_io, pipeline_process):
    settings = override(settings, chat={"secret": SECRET, "max_body_bytes": 4096})
    await kafka_io.create_topics()
    connector = pipeline_process(["connector", "chat"], settings,
                                 ready="event=connectors_started")
    url = endpoint(connector)
    pipeline_process(["worker", "--stages", "ingest"], tapped(settings, "messages.normalized"))

    good = [chat_body("m-1", "L'impression des étiquettes ne marche plus"),
            chat_body("m-2", "Où   configurer la TVA ?")]
    async with aiohttp.ClientSession() as session:
        accepted = [await post(session, url, body, sign(body, SECRET)) for body in good]
        retried = await post(session, url, good[0], sign(good[0], SECRET))
        forged = await post(session, url, good[1], sign(good[1], "not-the-secret"))
        unsigned = await post(session, url, good[1], None)
        malformed_body = b'{"message_id": "m-3", "text": '
        malformed = await post(session, url, malformed_body, sign(malformed_body, SECRET))
        missing = chat_body("m-4", "x").replace(b'"account_id": "acc-hangers-12", ', b"")
        missing_field = await post(session, url, missing, sign(missing, SECRET))
        oversize_body = chat_body("m-5", "é" * 5000)
        oversize = await post(session, url, oversize_body, sign(oversize_body, SECRET))

    assert [status for status, _ in accepted] == [202, 202]
    assert retried[0] == 202 and retried[1]["id"] == accepted[0][1]["id"]
    assert forged[0] == 401 and unsigned[0] == 401
    assert malformed[0] == 422
    assert missing_field[0] == 422 and "user.account_id" in missing_field[1]["error"]
    assert oversize[0] == 413

    raw = await kafka_io.read("inbound.raw", count=3, quiet=1.0)
    normalized = await kafka_io.read("messages.normalized", count=2, quiet=3.0)
    # Only the three accepted deliveries were produced; the retry is dropped by ingest.
    assert sorted(r.value["source_id"] for r in raw) == ["m-1", "m-1", "m-2"]
    assert sorted(r.value["source_id"] for r in normalized) == ["m-1", "m-2"]
    by_id = {r.value["source_id"]: r.value for r in normalized}
    first = by_id["m-1"]
    assert first["id"] == accepted[0][1]["id"]
    assert first["channel"] == "chat"
    assert first["sender"]["app_identity"] == {
        "user_id": "u-9", "account_id": "acc-hangers-12", "email": "claire@boutique.fr",
        "name": "Claire Martin"}
    assert first["thread"]["conversation_id"] == "conv-1"
    assert first["headers"]["x-chat-surface"] == "selfcare"
    assert by_id["m-2"]["text"] == "Où configurer la TVA ?"


async def test_pipeline_run_starts_its_own_broker_and_stops_cleanly(settings, pipeline_process):
    """`pipeline run` with no broker configured: embedded broker, stages, chat endpoint."""
    embedded = override(settings, kafka={"bootstrap": None}, chat={"secret": SECRET})
    proc = pipeline_process(["run"], embedded)
    assert "for trying the pipeline and for tests only" in proc.output()
    bootstrap = re.search(r"event=broker_started bootstrap=(\S+)", proc.output()).group(1)
    url = endpoint(proc)
    body = chat_body("run-1", "Bonjour, la facture FA-2026-118 est fausse")
    async with aiohttp.ClientSession() as session:
        status, answer = await post(session, url, body, sign(body, SECRET))
    assert status == 202

    io = KafkaIO(override(embedded, kafka={"bootstrap": bootstrap}))
    # The app's signed user identifies the customer: through both hops to a routed case.
    out = await io.read("cases.routed", until=lambda rs: any(
        r.value["id"] == answer["id"] for r in rs))
    [routed] = [r.value for r in out if r.value["id"] == answer["id"]]
    assert routed["text"] == "Bonjour, la facture FA-2026-118 est fausse"
    assert routed["identity"]["account_id"] == "acc-hangers-12"
    assert routed["case"]["action"] == "opened" and routed["routing"]["queue"]

    assert proc.stop(signal.SIGTERM) == 0
    host, port = bootstrap.split(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
        pass  # the embedded broker is gone with the pipeline
