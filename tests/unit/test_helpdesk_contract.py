"""The helpdesk connector's pure parts: case mapping, signatures, webhooks → case events."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from connectors.helpdesk.base import retry_after_seconds
from connectors.helpdesk.case import case_from_envelope, ticket_title
from connectors.helpdesk.config import HelpdeskConfig, RetryConfig
from connectors.helpdesk.lifecycle import chatwoot_event, webhook_event, zammad_event
from connectors.helpdesk.outbound import backoff_seconds
from connectors.helpdesk.signatures import (
    sign_timestamped,
    sign_zammad,
    verify_timestamped,
    verify_zammad,
)
from connectors.helpdesk.webhook import case_document
from connectors.helpdesk.zammad import Zammad
from pipeline.envelope import (
    Attachment,
    AttachmentKind,
    CaseLink,
    Channel,
    Envelope,
    Identity,
    Reference,
    Routing,
    Sender,
    Transcript,
)
from pipeline.errors import EnvelopeError, InvalidPayload, SignatureError

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NAMES = ("X-Pipeline-Signature", "X-Pipeline-Timestamp")


def voicemail() -> Envelope:
    audio = "file:///blobs/ab/abcdef"
    return Envelope(
        channel=Channel.VOICEMAIL, source_id="RE123", received_at=NOW,
        sender=Sender(phone="+33612345678"),
        attachments=[Attachment(kind=AttachmentKind.AUDIO, content_type="audio/x-wav",
                                size=48_000, uri=audio, filename="RE123.wav")],
        transcripts=[Transcript(attachment_uri=audio, language="fr",
                                text="Bonjour, c'est Marie de la boulangerie Dupont, la caisse "
                                     "affiche erreur 504 au paiement, rappelez-moi.")],
        identity=Identity(identified=True, account_id="ACC-1042", account_name="Boulangerie "
                          "Dupont", employee_id="EMP-1042-1", employee_name="Marie Dupont"),
        refs=[Reference(kind="order", value="MH38")],
        case=CaseLink(case_id="C-0A1B2C3D4E", action="opened", matched_by="new",
                      evidence=["no open case of this customer matched"]),
        routing=Routing(queue="tech", priority="high", rule="voicemail-bugs", category="bug",
                        sla_due_at=datetime(2026, 11, 24, 11, 0, tzinfo=UTC)))


def test_a_voicemail_becomes_a_case_with_its_customer_transcript_and_recording():
    case = case_from_envelope(voicemail())
    assert (case.case_id, case.queue, case.priority, case.category) == (
        "C-0A1B2C3D4E", "tech", "high", "bug")
    assert case.customer.account_id == "ACC-1042"
    assert case.customer.name == "Marie Dupont" and case.customer.phone == "+33612345678"
    assert case.customer.channel == "voicemail" and case.customer.identified
    assert "[audio RE123.wav, fr] Bonjour, c'est Marie" in case.body
    assert "Recording: file:///blobs/ab/abcdef" in case.body
    assert case.title.startswith("Bonjour, c'est Marie")
    assert case.references == ["order:MH38"]
    assert not case.is_follow_up


def test_an_envelope_without_routing_is_not_a_case():
    envelope = voicemail()
    envelope.routing = None
    with pytest.raises(EnvelopeError):
        case_from_envelope(envelope)


def test_a_long_subject_is_cut_at_a_word():
    envelope = voicemail()
    envelope.subject = "Problème d'impression " * 12
    title = ticket_title(envelope)
    assert len(title) <= 121 and title.endswith("…") and not title[:-1].endswith(" ")


def test_zammad_ticket_has_group_priority_customer_and_the_case_reference():
    config = HelpdeskConfig.model_validate({"enabled": True, "zammad": {
        "enabled": True, "groups": {"tech": "Support N2"}}}).zammad
    zammad = Zammad(config, read_blob=None, timeout_seconds=1)  # type: ignore[arg-type]
    case = case_from_envelope(voicemail())
    payload = zammad.ticket_payload(case, {"body": "..."})
    assert payload["group"] == "Support N2" and payload["priority"] == "3 high"
    assert payload["support_case_id"] == "C-0A1B2C3D4E"
    assert payload["support_account_id"] == "ACC-1042"
    # No e-mail on a voicemail: the fallback customer, the phone is in the article.
    assert payload["customer_id"] == "guess:unknown-customer@support.invalid"


def test_the_generic_webhook_document_carries_every_field():
    doc = case_document(case_from_envelope(voicemail()), "case.opened")
    assert doc["event"] == "case.opened" and doc["sla_due_at"] == "2026-11-24T11:00:00+00:00"
    assert doc["customer"]["employee_id"] == "EMP-1042-1"
    assert doc["attachments"][0]["kind"] == "audio"
    json.dumps(doc)


@pytest.mark.parametrize("queues,queue,expected", [
    ({}, "tech", "zammad"),
    ({"billing": "webhook", "*": "zammad"}, "billing", "webhook"),
    ({"billing": "webhook", "*": "zammad"}, "later", "zammad"),
    ({"billing": "webhook"}, "tech", None),
])
def test_queues_map_to_helpdesks(queues, queue, expected):
    config = HelpdeskConfig.model_validate({
        "enabled": True, "queues": queues, "zammad": {"enabled": True},
        "webhook": {"enabled": bool(queues), "url": "https://tool.example/hook"}})
    assert config.helpdesk_for(queue) == expected


def test_a_queue_sent_to_a_helpdesk_not_enabled_is_a_config_error():
    with pytest.raises(ValueError, match="not enabled: chatwoot"):
        HelpdeskConfig.model_validate({"enabled": True, "queues": {"*": "chatwoot"},
                                       "zammad": {"enabled": True}})


def test_zammad_signature_is_hmac_sha1_of_the_body():
    body = b'{"ticket": {"id": 1}}'
    assert sign_zammad(body, "s3cret") == "sha1=" + hmac.new(b"s3cret", body,
                                                             hashlib.sha1).hexdigest()
    verify_zammad(body, sign_zammad(body, "s3cret"), "s3cret")
    for header in (None, "", "sha1=00", sign_zammad(body + b" ", "s3cret")):
        with pytest.raises(SignatureError):
            verify_zammad(body, header, "s3cret")
    with pytest.raises(SignatureError, match="not configured"):
        verify_zammad(body, sign_zammad(body, ""), "")


def test_timestamped_signatures_refuse_forgeries_and_replays():
    body = b'{"event": "closed"}'
    stamp = str(int(NOW.timestamp()))
    good = sign_timestamped(body, stamp, "k")
    verify_timestamped(body, good, stamp, "k", NOW.timestamp() + 10, names=NAMES, setting="s")
    cases = [(good, str(int(stamp) + 1)), (sign_timestamped(body, stamp, "other"), stamp),
             (good, None), (None, stamp), (good, "yesterday")]
    for header, ts in cases:
        with pytest.raises(SignatureError):
            verify_timestamped(body, header, ts, "k", NOW.timestamp(), names=NAMES, setting="s")
    with pytest.raises(SignatureError, match="away from now"):
        verify_timestamped(body, good, stamp, "k", NOW.timestamp() + 3600, names=NAMES,
                           setting="s")


def zammad_body(state: object, **ticket: object) -> bytes:
    return json.dumps({"ticket": {"id": 12, "number": "31012", "title": "Caisse en panne",
                                  "state": state, "support_case_id": "C-0A1B2C3D4E",
                                  "support_account_id": "ACC-1042",
                                  "updated_at": "2026-11-24T10:00:00Z",
                                  "updated_by": {"login": "lea"}, **ticket}}).encode()


@pytest.mark.parametrize("state,kind", [
    ("closed", "closed"), ({"name": "closed"}, "closed"), ("open", "reopened"),
    ("pending reminder", "reopened"), ("merged", "merged"), ("new", None),
])
def test_zammad_states_map_to_case_events(state, kind):
    outcome = zammad_event(zammad_body(state), "support_case_id", "support_account_id")
    if kind is None:
        assert outcome.event is None and outcome.ignored
        return
    assert outcome.event is not None
    assert (outcome.event.event, outcome.event.case_id, outcome.event.account_id) == (
        kind, "C-0A1B2C3D4E", "ACC-1042")
    assert outcome.event.by == "lea"
    assert (outcome.needs_merge_target == "12") == (kind == "merged")


def test_zammad_tickets_not_opened_by_the_pipeline_are_ignored_and_garbage_is_422():
    outcome = zammad_event(zammad_body("closed", support_case_id=None), "support_case_id",
                           "support_account_id")
    assert outcome.event is None and "not opened by the pipeline" in (outcome.ignored or "")
    for body in (b"", b"[1]", b'{"article": {}}',
                 zammad_body("closed", support_account_id=None)):
        with pytest.raises(InvalidPayload):
            zammad_event(body, "support_case_id", "support_account_id")


def chatwoot_body(event: str, status: str, changed: object, **attributes: object) -> bytes:
    return json.dumps({"event": event, "id": 7, "status": status,
                       "changed_attributes": changed,
                       "custom_attributes": {"support_case_id": "C-0A1B2C3D4E",
                                             "support_account_id": "ACC-1042", **attributes}}
                      ).encode()


def test_chatwoot_resolved_reopened_merged_and_the_rest_ignored():
    def kind(body: bytes) -> str | None:
        outcome = chatwoot_event(body, "support_case_id", "support_account_id")
        return outcome.event.event if outcome.event else None

    status = [{"status": {"previous_value": "open", "current_value": "resolved"}}]
    assert kind(chatwoot_body("conversation_status_changed", "resolved", status)) == "closed"
    assert kind(chatwoot_body("conversation_status_changed", "open", status)) == "reopened"
    assert kind(chatwoot_body("conversation_updated", "resolved", status)) == "closed"
    assert kind(chatwoot_body("conversation_updated", "open", [{"labels": {}}])) is None
    assert kind(chatwoot_body("conversation_status_changed", "snoozed", status)) is None
    assert kind(chatwoot_body("message_created", "open", status)) is None
    merged = chatwoot_event(chatwoot_body("conversation_updated", "open",
                                          [{"custom_attributes": {}},
                                           {"support_merged_into": {}}],
                                          support_merged_into="C-FFFFFFFFFF"),
                            "support_case_id", "support_account_id")
    assert merged.event is not None and merged.event.into_case_id == "C-FFFFFFFFFF"


def test_generic_webhook_events_are_case_events():
    event = webhook_event(json.dumps({"event": "merged", "case_id": "C-1", "account_id": "A",
                                      "into_case_id": "C-2", "at": "2026-11-24T10:00:00Z"}
                                     ).encode()).event
    assert event is not None and (event.event, event.into_case_id) == ("merged", "C-2")
    with pytest.raises(InvalidPayload):
        webhook_event(b'{"event": "deleted", "case_id": "C-1", "account_id": "A"}')


def test_retry_after_and_backoff():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Tue, 24 Nov 2026 09:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("soon") is None
    retry = RetryConfig(initial_backoff_seconds=0.5, max_backoff_seconds=8,
                        max_retry_after_seconds=60)
    assert [backoff_seconds(a, None, retry) for a in range(6)] == [0.5, 1, 2, 4, 8, 8]
    assert backoff_seconds(0, 3600, retry) == 60
