"""`pipeline worker --stages transcribe` alone on the real broker, with the real model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.blobstore import BlobStore
from pipeline.envelope import Attachment, AttachmentKind, Channel, Envelope, Sender

pytestmark = pytest.mark.slow

CUSTOMER = Sender(phone="+33612345678", whatsapp_id="whatsapp:+33612345678",
                  display_name="Claire Martin")


def whatsapp(source_id: str, text: str = "", *, audio: Attachment | None = None,
             sender: Sender = CUSTOMER) -> Envelope:
    return Envelope(channel=Channel.WHATSAPP, source_id=source_id,
                    received_at=datetime(2026, 11, 23, 9, 30, tzinfo=UTC), sender=sender,
                    text=text, attachments=[audio] if audio else [])


def voice_note(blobs: BlobStore, data: bytes) -> Attachment:
    stored = blobs.put(data)
    return Attachment(kind=AttachmentKind.AUDIO, content_type="audio/ogg; codecs=opus",
                      size=stored.size, uri=stored.uri, sha256=stored.sha256)


async def test_voice_note_is_transcribed_and_text_behind_it_is_not_held_up(
        settings, kafka_io, pipeline_process, audio_clips, whisper_cache_dir):
    settings = settings.model_copy(update={"transcribe": settings.transcribe.model_copy(
        # concurrency 2: the voice note and the broken one are transcribed side by side.
        update={"model_cache_dir": str(whisper_cache_dir), "cpu_threads": 1, "device": "cpu",
                "concurrency": 2})})
    await kafka_io.create_topics()
    blobs = BlobStore(settings.blobs.url)
    voice = whatsapp("SMvoice1", audio=voice_note(blobs, audio_clips.bytes("long_voice_note_ogg")))
    text = whatsapp("SMtext2", "Je vous ai laissé un message vocal pour la facture.")
    broken = whatsapp("SMbroken3", audio=voice_note(blobs, audio_clips.bytes("corrupt_ogg")),
                      sender=Sender(phone="+33699887766", whatsapp_id="whatsapp:+33699887766"))
    # The voice note first, then a text of the same sender (same key, same partition): with
    # in-order processing the text would wait for the transcription.
    await kafka_io.produce("messages.normalized", [
        (voice.sender_key, voice.to_bytes()),
        (text.sender_key, text.to_bytes()),
        (broken.sender_key, broken.to_bytes()),
    ])
    worker = pipeline_process(["worker", "--stages", "transcribe"], settings)

    out = await kafka_io.read("messages.transcribed", count=3, timeout=120, quiet=1.0)
    by_id = {r.value["source_id"]: r for r in out}
    assert sorted(by_id) == ["SMbroken3", "SMtext2", "SMvoice1"]

    voice_out, text_out = by_id["SMvoice1"], by_id["SMtext2"]
    assert voice_out.key == text_out.key == voice.sender_key
    assert voice_out.partition == text_out.partition
    assert text_out.offset < voice_out.offset, "the text waited behind the voice note"

    [transcript] = voice_out.value["transcripts"]
    words = transcript["text"].lower()
    assert "facture" in words and "commande" in words, transcript["text"]
    assert transcript["language"] == "fr"
    assert transcript["attachment_uri"] == voice.attachments[0].uri
    assert transcript["model"] == "bundled:base"
    assert transcript["duration_s"] > 8
    assert not transcript.get("no_speech")

    assert text_out.value["text"] == text.text
    assert "transcripts" not in text_out.value or text_out.value["transcripts"] == []
    assert [m["stage"] for m in text_out.value["trace"]] == ["transcribe"]

    [failed] = by_id["SMbroken3"].value["transcripts"]
    assert failed["error"].startswith("corrupt_audio"), failed
    assert failed.get("text", "") == ""

    dead = await kafka_io.read("pipeline.deadletter", timeout=1.0)
    assert dead == []
    # One model load for the worker, on CPU int8 (no GPU here), whatever the number of notes.
    assert worker.output().count("event=model_loaded") == 1
    assert "device=cpu compute_type=int8" in worker.wait_for("event=model_loaded")
