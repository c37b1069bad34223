"""`pipeline worker --stages transcribe` alone on the real broker, with the real model: the
transcription hop (``transcribe.audio`` → transcribe → spam content checks →
``messages.accepted`` / ``messages.spam``), as GPU workers run it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.blobstore import BlobStore
from pipeline.envelope import Attachment, AttachmentKind, Channel, Envelope, Identity, Sender
from tests.fixtures.broker import tapped

pytestmark = pytest.mark.slow

CUSTOMER = Sender(phone="+33612345678", whatsapp_id="whatsapp:+33612345678",
                  display_name="Claire Martin")


def whatsapp(source_id: str, text: str = "", *, audio: Attachment | None = None,
             sender: Sender = CUSTOMER) -> Envelope:
    """As the intake hop hands it on: identified (account language French)."""
    return Envelope(channel=Channel.WHATSAPP, source_id=source_id,
                    received_at=datetime(2026, 11, 23, 9, 30, tzinfo=UTC), sender=sender,
                    text=text, attachments=[audio] if audio else [],
                    identity=Identity(identified=True, account_id="ACC-77", language="fr",
                                      tier="standard", matched_by="phone"))


def voice_note(blobs: BlobStore, data: bytes) -> Attachment:
    stored = blobs.put(data)
    return Attachment(kind=AttachmentKind.AUDIO, content_type="audio/ogg; codecs=opus",
                      size=stored.size, uri=stored.uri, sha256=stored.sha256)


async def test_voice_notes_are_transcribed_in_the_account_language_and_judged(
        settings, kafka_io, pipeline_process, audio_clips, whisper_cache_dir):
    settings = settings.model_copy(update={"transcribe": settings.transcribe.model_copy(
        # concurrency 2: the voice note and the broken one are transcribed side by side.
        update={"model_cache_dir": str(whisper_cache_dir), "cpu_threads": 1, "device": "cpu",
                "concurrency": 2})})
    await kafka_io.create_topics()
    blobs = BlobStore(settings.blobs.url)
    voice = whatsapp("SMvoice1", audio=voice_note(blobs, audio_clips.bytes("long_voice_note_ogg")))
    broken = whatsapp("SMbroken3", audio=voice_note(blobs, audio_clips.bytes("corrupt_ogg")),
                      sender=Sender(phone="+33699887766", whatsapp_id="whatsapp:+33699887766"))
    await kafka_io.produce("transcribe.audio", [("ACC-77", voice.to_bytes()),
                                                ("ACC-77", broken.to_bytes())])
    worker = pipeline_process(["worker", "--stages", "transcribe"],
                              tapped(settings, "messages.transcribed"))

    out = await kafka_io.read("messages.transcribed", count=2, timeout=120, quiet=1.0)
    by_id = {r.value["source_id"]: r for r in out}
    assert sorted(by_id) == ["SMbroken3", "SMvoice1"]
    voice_out = by_id["SMvoice1"]
    assert voice_out.key == "ACC-77"

    [transcript] = voice_out.value["transcripts"]
    words = transcript["text"].lower()
    assert "facture" in words and "commande" in words, transcript["text"]
    assert transcript["language"] == "fr"
    assert transcript["attachment_uri"] == voice.attachments[0].uri
    assert transcript["model"] == "bundled:base"
    assert transcript["duration_s"] > 8
    assert not transcript.get("no_speech")

    [failed] = by_id["SMbroken3"].value["transcripts"]
    assert failed["error"].startswith("corrupt_audio"), failed
    assert failed.get("text", "") == ""

    # Then the spam filter's content checks, in the same hop: the spoken request is accepted.
    # The note that could not be decoded may still hold a request: a person listens to it.
    accepted = await kafka_io.read("messages.accepted", until=lambda rs: {
        r.value["source_id"] for r in rs} >= {"SMvoice1", "SMbroken3"}, timeout=30)
    [case] = [r for r in accepted if r.value["source_id"] == "SMvoice1"]
    assert [m["stage"] for m in case.value["trace"]] == ["transcribe", "spamfilter"]
    assert case.value["transcripts"][0]["text"] == transcript["text"]
    [unheard] = [r.value for r in accepted if r.value["source_id"] == "SMbroken3"]
    assert unheard["spam"]["flags"] == ["low_confidence_transcript"], unheard["spam"]
    assert unheard["spam"]["listen_to"] == [broken.attachments[0].uri]

    dead = await kafka_io.read("pipeline.deadletter", timeout=1.0)
    assert dead == []
    # One model load for the worker, on CPU int8 (no GPU here), whatever the number of notes.
    assert worker.output().count("event=model_loaded") == 1
    assert "device=cpu compute_type=int8" in worker.wait_for("event=model_loaded")
