"""Reference extraction: order codes, invoices, contracts, URLs, from text, subject, transcripts."""

from datetime import UTC, datetime

import pytest

from pipeline.dedup.config import DEFAULT_REFERENCE_PATTERNS, ReferencePattern
from pipeline.dedup.refs import envelope_references, extract_references
from pipeline.envelope import Channel, Envelope, Transcript


def refs(text: str) -> list[tuple[str, str]]:
    return [(r.kind, r.value) for r in extract_references(text, DEFAULT_REFERENCE_PATTERNS)]


@pytest.mark.parametrize(("text", "expected"), [
    ("toujours bloqué sur la commande MH38", [("order", "MH38")]),
    ("Les commandes X45Q et MH38 ne partent pas", [("order", "X45Q"), ("order", "MH38")]),
    ("ma commande mh38 est bloquée", [("order", "MH38")]),
    ("Erreur sur la facture FAC-2026-0042, merci", [("invoice", "FAC-2026-0042")]),
    ("Invoice #INV-20931 was charged twice", [("invoice", "INV-20931")]),
    ("Résiliation du contrat n° 2024-118", [("contract", "2024-118")]),
    ("see contract CTR-5521", [("contract", "CTR-5521")]),
    ("La page https://app.example.com/settings/vat/ plante.",
     [("url", "https://app.example.com/settings/vat")]),
    ("Cordialement, https://www.boulangerie-martin.fr/ — https://example.com", []),
    # Nothing to see: words in capitals, short codes, years, phone numbers.
    ("Où configurer la TVA ? Format A4, MP3, en 2026, appelez le 0612345678", []),
])
def test_references_found_in_customer_text(text, expected):
    assert refs(text) == expected


def test_patterns_are_configurable():
    ticket = [ReferencePattern(kind="ticket", pattern=r"\bTK-(\d{5})\b")]
    assert [(r.kind, r.value) for r in extract_references("suite au TK-12345", ticket)] == [
        ("ticket", "12345")]


def test_subject_and_voicemail_transcript_are_read():
    env = Envelope(channel=Channel.VOICEMAIL, source_id="RE1",
                   received_at=datetime(2026, 11, 23, 9, tzinfo=UTC), subject="Commande X45Q",
                   transcripts=[Transcript(text="je rappelle pour la facture FAC-2026-0042")])
    assert {(r.kind, r.value) for r in envelope_references(env, DEFAULT_REFERENCE_PATTERNS)} == {
        ("order", "X45Q"), ("invoice", "FAC-2026-0042")}
