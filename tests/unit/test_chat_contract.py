"""The in-app chat contract: signature and payload validation."""

import json
from datetime import UTC, datetime

import pytest

from connectors.chat.contract import parse_message, sign, to_envelope, verify_signature
from pipeline.errors import InvalidPayload, SignatureError

SECRET = "shared-secret"
BODY = json.dumps({
    "message_id": "msg-42", "conversation_id": "conv-7", "sent_at": "2026-11-23T10:15:00+01:00",
    "text": "L'impression des étiquettes ne marche plus depuis ce matin",
    "surface": "ipad", "user": {"id": "u-9", "account_id": "acc-hangers-12",
                                "email": "claire@boutique.fr", "name": "Claire"},
}).encode()


def test_valid_signature_passes():
    verify_signature(BODY, sign(BODY, SECRET), SECRET)


@pytest.mark.parametrize("header", [None, "", "sha256=deadbeef", sign(BODY, "other-secret"),
                                    sign(BODY + b" ", SECRET)])
def test_forged_or_missing_signature_fails(header):
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, SECRET)


def test_message_becomes_identified_chat_envelope():
    env = to_envelope(parse_message(BODY), datetime(2026, 11, 23, 9, 15, tzinfo=UTC))
    assert env.channel == "chat" and env.source_id == "msg-42"
    assert env.sender.app_identity.account_id == "acc-hangers-12"
    assert env.sender.app_identity.user_id == "u-9"
    assert env.thread.conversation_id == "conv-7"
    assert env.headers["x-chat-surface"] == "ipad"
    assert env.sender_key == "chat:app:acc-hangers-12:u-9"


@pytest.mark.parametrize("body,field", [
    (b"{not json", "body"),
    (json.dumps({"message_id": "m", "sent_at": "2026-11-23T10:00:00+01:00"}).encode(), "user"),
    (json.dumps({"message_id": "m", "sent_at": "2026-11-23T10:00:00",
                 "user": {"id": "u", "account_id": "a"}}).encode(), "sent_at"),
    (json.dumps({"message_id": "", "sent_at": "2026-11-23T10:00:00Z",
                 "user": {"id": "u", "account_id": "a"}}).encode(), "message_id"),
    (json.dumps({"message_id": "m", "sent_at": "2026-11-23T10:00:00Z",
                 "user": {"id": "u"}}).encode(), "user.account_id"),
])
def test_invalid_payload_names_the_field(body, field):
    with pytest.raises(InvalidPayload) as info:
        parse_message(body)
    assert field in str(info.value)
