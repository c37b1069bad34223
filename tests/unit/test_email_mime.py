"""MIME parsing and reply splitting: pure functions over realistic support emails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.email.errors import MalformedEmail
from connectors.email.message import source_id_for, to_envelope
from connectors.email.mime import decode_text, parse_email
from connectors.email.quotes import split_reply
from pipeline.envelope import Channel
from tests import email_samples as samples

LIMIT = 1024 * 1024


def test_plain_message_keeps_headers_and_text():
    parsed = parse_email(samples.plain(1), max_attachment_bytes=LIMIT)
    assert parsed.message_id == "<plain-1@boulangerie-martin.fr>"
    assert parsed.from_email == "jeanne.martin@boulangerie-martin.fr"
    assert parsed.from_name == "Jeanne Martin"
    assert parsed.to == ["support@hangers.example"]
    assert parsed.subject == "Commande MH38 bloquée (1)"
    assert parsed.date == datetime(2026, 11, 23, 8, 12, tzinfo=UTC)
    assert "la commande MH38 est bloquée" in parsed.text
    assert parsed.text_source == "plain"


def test_html_only_is_converted_to_text_with_links():
    parsed = parse_email(samples.html_only(), max_attachment_bytes=LIMIT)
    assert parsed.text_source == "html"
    assert "Invoice INV-2026-0042 charges us twice" in parsed.text
    assert "https://selfcare.example/contracts/C-7781" in parsed.text
    assert "<p>" not in parsed.text


def test_multipart_prefers_plain_and_lists_attachments():
    parsed = parse_email(samples.with_attachments(), max_attachment_bytes=LIMIT)
    assert parsed.text_source == "plain"
    assert "<p>" not in parsed.text
    assert parsed.cc == ["compta@garage-durand.fr"]
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("erreur-caisse.png", "image/png"), ("message-vocal.wav", "audio/wav")]
    assert parsed.attachments[1].data == samples.WAV


def test_attachment_over_limit_is_recorded_not_kept():
    parsed = parse_email(samples.with_attachments(), max_attachment_bytes=50)
    png = parsed.attachments[0]
    assert png.data is None and png.size == len(samples.PNG)
    assert "over the 50-byte limit" in (png.error or "")


@pytest.mark.parametrize(("raw", "expected", "noted"), [
    (samples.latin1(), "la facture F-2031 est erronée : le montant dû est déjà réglé", False),
    (samples.wrong_charset(), "La caisse est bloquée, impossible d'encaisser. Très urgent", True),
    (samples.unknown_charset(), "Réponse urgente svp", True),
])
def test_every_charset_decodes(raw, expected, noted):
    parsed = parse_email(raw, max_attachment_bytes=LIMIT)
    assert expected in parsed.text
    assert bool(parsed.notes) is noted


def test_encoded_headers_are_decoded():
    parsed = parse_email(samples.latin1(), max_attachment_bytes=LIMIT)
    assert parsed.subject == "Problème de facture"
    assert parsed.from_name == "Renée Lévêque"
    raw_utf8 = parse_email(samples.wrong_charset(), max_attachment_bytes=LIMIT)
    assert (raw_utf8.from_name, raw_utf8.subject) == ("Chloé", "Caisse bloquée")


def test_decode_text_falls_back_without_crashing():
    assert decode_text("déjà".encode(), "utf-8") == ("déjà", None)
    text, note = decode_text("déjà".encode("cp1252"), "utf-8")
    assert text == "déjà" and "cp1252" in (note or "")
    text, _ = decode_text(b"\x81\x8d\x8f", "utf-8")  # undefined in cp1252: latin-1 takes it
    assert len(text) == 3


def test_auto_reply_headers_are_kept_lower_cased():
    parsed = parse_email(samples.auto_reply(), max_attachment_bytes=LIMIT)
    assert parsed.headers["auto-submitted"] == "auto-replied"
    assert parsed.headers["x-autoreply"] == "yes"
    assert parsed.headers["precedence"] == "auto_reply"
    assert parsed.headers["return-path"] == "<>"


def test_malformed_bytes_raise_malformed_email():
    with pytest.raises(MalformedEmail):
        parse_email(samples.malformed(), max_attachment_bytes=LIMIT)
    with pytest.raises(MalformedEmail):
        parse_email(b"   \r\n", max_attachment_bytes=LIMIT)


def test_reply_is_split_into_new_text_signature_and_quote():
    parsed = parse_email(samples.reply(), max_attachment_bytes=LIMIT)
    env = to_envelope(parsed, source_id=source_id_for(parsed, b""),
                      received_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC), attachments=[],
                      mailbox="INBOX", uid=7, uidvalidity=42)
    assert env.channel is Channel.EMAIL
    assert env.text == "Toujours bloquée ce soir, pouvez-vous me rappeler ?"
    assert env.signature == "-- \nJeanne Martin\nBoulangerie Martin, 12 rue des Lilas".strip()
    assert "nous regardons la commande MH38" in (env.quoted_text or "")
    assert env.thread.in_reply_to == "<case-4411@hangers.example>"
    assert env.thread.references == ["<plain-1@boulangerie-martin.fr>",
                                     "<case-4411@hangers.example>"]
    assert env.headers["x-imap-uid"] == "7"
    assert env.source_id == "<reply@boulangerie-martin.fr>"


@pytest.mark.parametrize(("text", "new", "quoted_start"), [
    ("Still broken.\n\nOn Mon, 23 Nov 2026 at 10:02, Support <s@x.example> wrote:\n> Hi",
     "Still broken.", "On Mon"),
    ("Merci, c'est réglé.\n\nDe : Support Hangers\nEnvoyé : lundi 23 novembre 2026\n"
     "Objet : commande", "Merci, c'est réglé.", "De :"),
    ("Voir ci-dessous.\n-----Message d'origine-----\nDe: x", "Voir ci-dessous.", "-----"),
    ("Please call me back.\n\nSent from my iPhone", "Please call me back.", None),
])
def test_split_reply_markers(text, new, quoted_start):
    parts = split_reply(text)
    assert parts.new_text == new
    if quoted_start:
        assert (parts.quoted or "").startswith(quoted_start)
    else:
        assert parts.signature == "Sent from my iPhone"


def test_a_bare_forward_keeps_its_text():
    text = "---------- Forwarded message ---------\nDe: client@x.fr\nLa caisse est bloquée"
    assert split_reply(text).new_text == text


def test_source_id_without_message_id_is_the_digest_of_the_bytes():
    raw = b"From: a@b.fr\r\nSubject: sans id\r\n\r\nbonjour\r\n"
    parsed = parse_email(raw, max_attachment_bytes=LIMIT)
    assert parsed.message_id is None
    assert source_id_for(parsed, raw) == source_id_for(parsed, raw)
    assert source_id_for(parsed, raw).startswith("sha256:")


def envelope_of(raw: bytes, uid: int = 7):  # type: ignore[no-untyped-def]
    parsed = parse_email(raw, max_attachment_bytes=LIMIT)
    return to_envelope(parsed, source_id=source_id_for(parsed, raw),
                       received_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC), attachments=[],
                       mailbox="INBOX", uid=uid, uidvalidity=42)


def test_same_message_id_with_another_body_is_another_message():
    first = envelope_of(samples.plain(1))
    other = envelope_of(samples.plain(1, text="Bonjour, la facture FA-2026-118 est fausse."))
    assert first.source_id == other.source_id == "<plain-1@boulangerie-martin.fr>"
    assert first.id != other.id
    assert first.idempotency_key != other.idempotency_key
    assert first.source_key == other.source_key  # what ingest notes the collision by


def test_the_same_message_delivered_again_is_the_same_message():
    raw = samples.plain(1)
    # A second delivery adds trace headers and may store LF line endings: still a retry.
    again = (b"Received: from mx2.hangers.example by imap (Dovecot); Mon, 23 Nov 2026\r\n"
             b"Delivered-To: support@hangers.example\r\n" + raw).replace(b"\r\n", b"\n")
    first, rescanned, delivered = envelope_of(raw), envelope_of(raw, uid=99), envelope_of(again)
    assert first.id == rescanned.id == delivered.id
    assert first.idempotency_key == rescanned.idempotency_key == delivered.idempotency_key


@pytest.mark.parametrize("change", [
    lambda raw: raw.replace(b"Subject: Commande MH38", b"Subject: Facture MH38"),
    lambda raw: raw.replace(b"Date: Mon, 23 Nov 2026 09:12", b"Date: Mon, 23 Nov 2026 10:40"),
    lambda raw: raw.replace(b"From: Jeanne Martin <jeanne", b"From: Jeanne Martin <paul"),
])
def test_what_the_sender_wrote_is_in_the_content_digest(change):
    raw = samples.plain(1)
    assert change(raw) != raw
    assert envelope_of(change(raw)).id != envelope_of(raw).id


def test_a_header_only_fetch_is_digested_from_its_header():
    raw = samples.plain(1)
    head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    a = parse_email(head, max_attachment_bytes=LIMIT, headers_only=True)
    b = parse_email(head, max_attachment_bytes=LIMIT, headers_only=True)
    assert a.content_digest == b.content_digest
    assert a.content_digest.startswith("sha256:")
