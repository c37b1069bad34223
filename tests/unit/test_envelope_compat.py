"""The envelope as a contract across versions: a newer connector beside an older worker.

A newer writer's fields survive every stage of this version (read, changed, re-encoded);
an envelope of a newer major ``schema_version`` is refused with the version as the reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pipeline.deadletter import DeadLetter
from pipeline.envelope import SCHEMA_VERSION, Envelope, Routing, Transcript
from pipeline.errors import EnvelopeError, UnsupportedEnvelopeVersion
from pipeline.ingest.config import IngestConfig
from pipeline.ingest.core import normalise
from pipeline.route.core import follow_case, remember_case, remembered_routing
from pipeline.stage import decode_envelope, encode
from pipeline.transcribe.core import with_transcripts

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def newer_writer_record(schema_version: object = SCHEMA_VERSION) -> dict:  # type: ignore[type-arg]
    """What a newer connector (same major version) writes: fields this code does not know,
    at the top level and inside sections."""
    return {
        "schema_version": schema_version,
        "channel": "whatsapp",
        "source_id": "SM9f2c",
        "received_at": "2026-11-23T09:30:00Z",
        "text": "Bonjour,  la commande MH38 n'est pas arrivée",
        "sender": {"phone": "+33612345678", "verified_by": "twilio-lookup"},
        "attachments": [{"kind": "audio", "content_type": "audio/ogg", "size": 12,
                         "uri": "file:///blobs/ab/abcd", "duration_ms": 4200}],
        "thread": {"conversation_id": "wa-1", "platform_thread": "t-77"},
        "routing": {"queue": "logistique", "priority": "high", "rule": "orders",
                    "escalation": {"level": 2}},
        "customer_mood": {"score": -0.4, "model": "mood-v3"},
    }


def unknown_fields(record: dict) -> dict:  # type: ignore[type-arg]
    return {"customer_mood": record.get("customer_mood"),
            "verified_by": record["sender"].get("verified_by"),
            "duration_ms": record["attachments"][0].get("duration_ms"),
            "platform_thread": record["thread"].get("platform_thread"),
            "escalation": record.get("routing", {}).get("escalation")}


def test_fields_of_a_newer_writer_survive_every_stage_of_this_version():
    record = newer_writer_record()
    envelope = decode_envelope(json.dumps(record).encode())
    # ingest copies the parts it changes, transcribe deep-copies, route follows a case:
    # each hands on an envelope that this version then re-encodes for the next topic.
    envelope = normalise(envelope, IngestConfig()).envelope
    envelope = with_transcripts(envelope, [Transcript(text="commande MH38", language="fr")])
    assert envelope.routing is not None
    envelope.routing = follow_case(envelope.routing, "v2")
    written = json.loads(encode(envelope))

    assert unknown_fields(written) == unknown_fields(record)
    assert written["text"] == "Bonjour, la commande MH38 n'est pas arrivée"  # the stage's work
    assert written["routing"]["follows_case"] is True
    assert Envelope.from_bytes(encode(envelope)) == envelope  # and again, unchanged


def test_a_routing_remembered_by_route_carries_no_table_bookkeeping_onto_the_case():
    routing = Routing(queue="support", priority="normal", rule="default")
    known = remember_case({}, "C-1", routing.model_dump(mode="json", exclude_none=True), NOW,
                          NOW, max_age_days=30, max_cases=10)
    assert remembered_routing(known["C-1"]) == routing


def test_an_envelope_without_schema_version_is_read_as_version_1():
    record = newer_writer_record()
    del record["schema_version"]
    assert decode_envelope(json.dumps(record).encode()).schema_version == 1


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, str(SCHEMA_VERSION + 1), "2.3", 7])
def test_a_newer_major_version_is_refused_naming_the_version_seen_and_supported(version):
    raw = json.dumps(newer_writer_record(version)).encode()
    with pytest.raises(UnsupportedEnvelopeVersion) as info:
        Envelope.from_bytes(raw)
    seen = int(str(version).split(".")[0])
    assert info.value.seen == seen and info.value.supported == SCHEMA_VERSION
    assert f"schema_version {seen}" in str(info.value)
    assert f"({SCHEMA_VERSION})" in str(info.value)


def test_a_newer_major_version_becomes_a_dead_letter_with_that_reason():
    # decode_envelope is what every stage runs on its input; an EnvelopeError there is
    # turned into a dead letter (stage.py), whose reason is the error's text.
    raw = json.dumps(newer_writer_record(SCHEMA_VERSION + 1)).encode()
    with pytest.raises(EnvelopeError) as info:
        decode_envelope(raw)
    letter = DeadLetter.from_failure(stage="ingest", error=info.value, failed_at=NOW,
                                     source_topic="inbound.raw", value=raw)
    assert letter.error_type == "UnsupportedEnvelopeVersion"
    assert f"schema_version {SCHEMA_VERSION + 1}" in letter.error
    assert letter.original_value() == raw  # replayable once the worker is upgraded


def test_a_newer_major_version_is_refused_even_when_its_fields_changed_shape():
    # A new major version may change any field: the version is the reason, not the fields.
    record = {"schema_version": SCHEMA_VERSION + 1, "channel": {"kind": "sms"},
              "origin": {"id": "SM1"}}
    with pytest.raises(UnsupportedEnvelopeVersion):
        decode_envelope(json.dumps(record).encode())
