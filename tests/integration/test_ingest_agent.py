"""The ingest agent on the real broker: normalises, drops source retries, dead-letters junk."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.envelope import Channel, Envelope, Sender
from tests.fixtures.broker import tapped

pytestmark = pytest.mark.slow


def whatsapp(source_id: str, text: str) -> Envelope:
    return Envelope(channel=Channel.WHATSAPP, source_id=source_id,
                    received_at=datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
                    sender=Sender(phone="+33612345678", whatsapp_id="whatsapp:+33612345678"),
                    text=text)


async def test_ingest_normalises_drops_retries_and_dead_letters(settings, kafka_io,
                                                                pipeline_process):
    await kafka_io.create_topics()
    first = whatsapp("SM001", "  Bonjour,\u00a0la  commande   MH38\r\n\r\n\r\n\r\nest bloquée ")
    retry = whatsapp("SM001", "  Bonjour,\u00a0la  commande   MH38 est bloquée ")
    second = whatsapp("SM002", "Cafe\u0301 offert ?")
    await kafka_io.produce("inbound.raw", [
        (first.sender_key, first.to_bytes()),
        (retry.sender_key, retry.to_bytes()),
        (first.sender_key, b"{not json"),
        (second.sender_key, second.to_bytes()),
    ])
    pipeline_process(["worker", "--stages", "ingest"], tapped(settings, "messages.normalized"))

    out = await kafka_io.read("messages.normalized", count=2, quiet=2.0)
    dead = await kafka_io.read("pipeline.deadletter", count=1)

    assert [r.value["source_id"] for r in out] == ["SM001", "SM002"]
    assert out[0].value["text"] == "Bonjour, la commande MH38\n\nest bloquée"
    assert out[1].value["text"] == "Café offert ?"  # NFC: e + combining acute → é
    assert out[0].key == "whatsapp:whatsapp:+33612345678"
    assert out[0].value["trace"][0]["stage"] == "ingest"
    assert len(dead) == 1
    assert dead[0].value["stage"] == "ingest"
    assert dead[0].value["error_type"] == "EnvelopeError"
    assert dead[0].value["value"] == "{not json"
