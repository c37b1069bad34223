"""Property tests of the envelope parser every stage relies on (``decode_envelope``):
whatever bytes arrive on a topic, it returns an Envelope or raises EnvelopeError (which
the stage turns into a dead letter); it never raises anything else, never crashes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.envelope import Channel, Envelope, Sender
from pipeline.errors import EnvelopeError
from pipeline.stage import decode_envelope

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)

# Near-valid envelopes: the real keys with values that are sometimes right, sometimes not.
field_values = {
    "channel": st.sampled_from(["chat", "email", "whatsapp", "voicemail", "sms", "", 3]),
    "source_id": st.text(max_size=20) | st.integers(),
    "received_at": st.sampled_from(["2026-11-23T09:30:00Z", "2026-11-23", "hier", 0, None]),
    "text": st.text(max_size=50) | st.integers(),
    "sender": json_values,
    "attachments": json_values,
    "headers": st.dictionaries(st.text(max_size=8), st.text(max_size=8)) | json_values,
    "schema_version": st.integers() | st.text(max_size=3),
    "identity": json_values,
    "routing": json_values,
}
envelope_like = st.fixed_dictionaries({}, optional=field_values)


def check(value: bytes | None) -> None:
    try:
        envelope = decode_envelope(value)
    except EnvelopeError:
        return
    assert isinstance(envelope, Envelope) and envelope.id


@hsettings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.none())
def test_random_bytes_are_an_envelope_or_an_envelope_error(value):
    check(value)


@hsettings(max_examples=150, deadline=None)
@given(json_values)
def test_random_json_is_an_envelope_or_an_envelope_error(value):
    check(json.dumps(value).encode())


@hsettings(max_examples=200, deadline=None)
@given(envelope_like)
def test_near_valid_envelopes_are_an_envelope_or_an_envelope_error(value):
    check(json.dumps(value).encode())


@hsettings(max_examples=200, deadline=None)
@given(st.sampled_from(list(Channel)), st.text(min_size=1, max_size=40), st.text(max_size=200),
       st.text(max_size=30) | st.none())
def test_a_written_envelope_reads_back_identical(channel, source_id, text, display_name):
    envelope = Envelope(channel=channel, source_id=source_id, text=text,
                        received_at=datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
                        sender=Sender(display_name=display_name, phone="+33612345678"))
    assert decode_envelope(envelope.to_bytes()) == envelope


def test_a_rejected_record_says_which_field_is_wrong():
    with_bad_channel = {"channel": "sms", "source_id": "SM1",
                        "received_at": "2026-11-23T09:30:00Z"}
    try:
        decode_envelope(json.dumps(with_bad_channel).encode())
    except EnvelopeError as exc:
        assert "channel" in str(exc)
    else:
        raise AssertionError("an unknown channel was accepted")
