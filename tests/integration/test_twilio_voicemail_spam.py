"""Phone-band voicemails through the Twilio voice line, transcription, identification and
the spam filter: speech reaches an agent, only silence is quarantined.

The hub (Twilio connectors) runs in the test; one ``pipeline worker --stages
ingest,transcribe,identify,spamfilter`` (the intake and transcription hops) runs the
bundled Whisper base on CPU. Recordings are
8 kHz mono 16-bit WAV band-limited to 300-3400 Hz, as Twilio records a phone call: a French
voicemail (espeak-ng), a silent call, and a garbled line (the same speech played backwards:
speech to the VAD, nothing the model can make sense of). A caller no customer registered
is quarantined before any transcription is spent on the recording.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.integration.twilio_helpers import (
    SAID,
    TUESDAY_10H_PARIS,
    VOICEMAIL_DIRECTORY,
    leave_voicemail,
    make_hub,
    phone_wav,
    twilio_settings,
)

pytestmark = pytest.mark.slow

NO_LANGUAGE_PHONE = "+33655443322"
NO_LANGUAGE_ACCOUNT = f"""\
  - id: ACC-78
    name: Boulangerie Dupont
    country: FR
    employees:
      - id: EMP-78-1
        name: Marie Dupont
        phones: ["{NO_LANGUAGE_PHONE}"]
"""

async def test_phone_voicemails_speech_is_routed_silence_quarantined(
        settings, kafka_io, pipeline_process, pipeline_cli, twilio_cloud, tmp_path,
        whisper_cache_dir):
    settings = twilio_settings(settings, twilio_cloud)
    settings = settings.model_copy(update={"transcribe": settings.transcribe.model_copy(
        update={"model_cache_dir": str(whisper_cache_dir), "cpu_threads": 2, "device": "cpu"})})
    await kafka_io.create_topics()
    directory = tmp_path / "employees.yaml"
    # A second customer whose account has no language: the configured list ([fr, en]) applies.
    directory.write_text(VOICEMAIL_DIRECTORY + NO_LANGUAGE_ACCOUNT)
    assert pipeline_cli(["directory", "import", str(directory)], settings).returncode == 0
    worker = pipeline_process(["worker", "--stages", "ingest,transcribe,identify,spamfilter"],
                              settings)
    worker.wait_for("event=model_loaded", timeout=120)
    worker.wait_for("event=side_input_following name=directory", timeout=60)

    spoken = phone_wav(tmp_path, "spoken", SAID)
    garbled = phone_wav(tmp_path, "garbled", SAID, backwards=True)
    async with make_hub(settings, clock=lambda: TUESDAY_10H_PARIS) as hub:
        await leave_voicemail(hub, twilio_cloud, "CA8001", spoken, 9)
        await leave_voicemail(hub, twilio_cloud, "CA8002", phone_wav(tmp_path, "silent", None), 4)
        await leave_voicemail(hub, twilio_cloud, "CA8003", garbled, 9)
        await leave_voicemail(hub, twilio_cloud, "CA8004", spoken, 9, caller="+33799000111")
        await leave_voicemail(hub, twilio_cloud, "CA8005", spoken, 9, caller=NO_LANGUAGE_PHONE)

    accepted = await kafka_io.read("messages.accepted", count=3, timeout=180, quiet=1.0)
    spam = await kafka_io.read("messages.spam", count=2, timeout=30, quiet=1.0)
    by_call = {r.value["headers"]["x-twilio-call-sid"]: r for r in accepted + spam}
    assert sorted(by_call) == ["CA8001", "CA8002", "CA8003", "CA8004", "CA8005"], \
        worker.output()[-3000:]
    assert sorted(r.value["headers"]["x-twilio-call-sid"] for r in spam) == ["CA8002", "CA8004"]

    # The unknown caller: quarantined by the intake hop, the recording never transcribed.
    stranger = by_call["CA8004"].value
    assert stranger["spam"]["reason"] == "unidentified", stranger["spam"]
    assert stranger.get("transcripts", []) == []
    assert "transcribe" not in [m["stage"] for m in stranger["trace"]]
    # The transcriber's counters, as published after every outcome above was read.
    outcomes_read = datetime.now(UTC)
    metrics = await kafka_io.read("pipeline.metrics", timeout=30, until=lambda rs: any(
        r.key == "transcribe" and datetime.fromisoformat(r.value["at"]) > outcomes_read
        for r in rs))
    transcribe = [r.value["counters"] for r in metrics if r.key == "transcribe"][-1]
    assert transcribe.get("in") == 4, transcribe  # the registered callers' four recordings

    # The French voicemail: transcribed in the account's language, routed to an agent.
    french = by_call["CA8001"].value
    [transcript] = french["transcripts"]
    assert transcript["language"] == "fr" and transcript["language_source"] == "account"
    assert transcript["text"] and not transcript.get("no_speech")
    assert transcript["speech_s"] > 4
    assert not french["spam"]["quarantined"] and by_call["CA8001"].key == "ACC-77"

    # The silent call: quarantined as such, never shown to an agent.
    silent = by_call["CA8002"].value
    assert silent["spam"]["reason"] == "silent_call", silent["spam"]
    assert silent["transcripts"][0]["no_speech"]

    # The garbled line: speech was heard, so a person listens; flagged, with the recording.
    unsure = by_call["CA8003"].value
    assert not unsure["spam"]["quarantined"]
    assert unsure["spam"]["flags"] == ["low_confidence_transcript"], unsure["transcripts"]
    recording = unsure["attachments"][0]["uri"]
    assert unsure["spam"]["listen_to"] == [recording]
    assert any(note.startswith("low_confidence_transcript:") and recording in note
               for note in unsure["notes"])

    # The account without a language: detected among the desk's languages only (Whisper base
    # may pick English on 8 kHz French, never Thai), and routed like any speech.
    detected = by_call["CA8005"].value
    [transcript] = detected["transcripts"]
    assert transcript["language_source"] == "detected", transcript
    assert transcript["language"] in ("fr", "en"), transcript
    assert not detected["spam"]["quarantined"] and by_call["CA8005"].key == "ACC-78"
