"""Ingest core: normalisation and source-retry recognition."""

from datetime import UTC, datetime

import pytest

from pipeline.envelope import Channel, Envelope, Sender
from pipeline.ingest.config import IngestConfig
from pipeline.ingest.core import (
    Sighting,
    collision_note,
    is_source_id_collision,
    is_source_retry,
    normalise,
    normalise_text,
)

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("raw,expected", [
    ("  Bonjour  ", "Bonjour"),
    ("Cafe\u0301", "Café"),                              # NFD → NFC
    ("ligne 1\r\nligne 2\rligne 3", "ligne 1\nligne 2\nligne 3"),
    ("a\n\n\n\n\nb", "a\n\nb"),
    ("prix\u00a0:\t12\u202f€", "prix : 12 €"),
    ("zero\u200bwidth\ufeff", "zerowidth"),
    ("bell\x07 and nul\x00", "bell and nul"),
    ("", ""),
])
def test_normalise_text(raw, expected):
    assert normalise_text(raw) == expected


def test_normalise_truncates_but_returns_the_full_text():
    long_text = "Bonjour " * 100
    env = Envelope(channel=Channel.EMAIL, source_id="<a@b>", received_at=NOW, text=long_text,
                   subject="  Facture\n FA-2026-001  ",
                   sender=Sender(email=" claire@boutique.fr ", display_name=" Claire\n D. "))
    out = normalise(env, IngestConfig(max_text_chars=50, max_subject_chars=10))
    assert len(out.envelope.text) == 50
    assert out.overflow_text == long_text.strip()
    assert out.envelope.subject == "Facture FA"
    assert out.envelope.sender.email == "claire@boutique.fr"
    assert out.envelope.sender.display_name == "Claire D."
    assert any("truncated" in note for note in out.envelope.notes)
    assert env.text == long_text  # the input is not modified


def test_short_text_has_no_overflow():
    env = Envelope(channel=Channel.CHAT, source_id="1", received_at=NOW, text="Où est la TVA ?")
    assert normalise(env, IngestConfig()).overflow_text is None


WINDOW = 3600.0


@pytest.mark.parametrize("first,partition,offset,now,retry", [
    (None, 0, 5, 1000.0, False),                         # first sighting
    (Sighting(1000.0, 0, 5), 0, 9, 1500.0, True),        # second delivery within the window
    (Sighting(1000.0, 0, 5), 0, 5, 1500.0, False),       # same record redelivered after a crash
    (Sighting(1000.0, 0, 5), 0, 9, 1000.0 + WINDOW + 1, False),  # window expired
])
def test_is_source_retry(first, partition, offset, now, retry):
    assert is_source_retry(first, partition, offset, now, WINDOW) is retry


@pytest.mark.parametrize("first,digest,now,collision", [
    (None, "sha256:b", 1500.0, False),                          # first message with this id
    (Sighting(1000.0, 0, 5, "sha256:a"), "sha256:b", 1500.0, True),   # other content
    (Sighting(1000.0, 0, 5, "sha256:a"), "sha256:a", 1500.0, False),  # the same message
    (Sighting(1000.0, 0, 5, "sha256:a"), "sha256:b", 1000.0 + WINDOW + 1, False),  # expired
    (Sighting(1000.0, 0, 5), "sha256:b", 1500.0, False),        # key written before digests
    (Sighting(1000.0, 0, 5, "sha256:a"), None, 1500.0, False),  # channel without digests
])
def test_is_source_id_collision(first, digest, now, collision):
    assert is_source_id_collision(first, digest, now, WINDOW) is collision


def test_a_collision_note_names_the_other_message():
    env = Envelope(channel=Channel.EMAIL, source_id="<x@mailer>", source_digest="sha256:b",
                   received_at=NOW)
    note = collision_note(env, Sighting(1000.0, 0, 5, "sha256:a"))
    other = Envelope(channel=Channel.EMAIL, source_id="<x@mailer>", source_digest="sha256:a",
                     received_at=NOW)
    assert other.id in note and env.id != other.id
    assert "<x@mailer>" in note
