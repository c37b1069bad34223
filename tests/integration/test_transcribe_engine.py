"""Real recordings through the real Whisper model (bundled base, CPU int8)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from pipeline.envelope import Attachment, AttachmentKind
from pipeline.transcribe import audio, core
from pipeline.transcribe.config import TranscribeConfig
from pipeline.transcribe.engine import Transcriber
from pipeline.transcribe.errors import AudioTooLong, CorruptAudio, EmptyAudio, UnsupportedAudio
from tests.fixtures.audio import ORDER_CODE, digits, normalise_words

pytestmark = pytest.mark.slow

VOICE_NOTE = Attachment(kind=AttachmentKind.AUDIO, content_type="audio/ogg", uri="file:///x")


@pytest.mark.parametrize("clip", ["late_order_wav", "late_order_ogg"])
def test_french_voice_message_keeps_order_code_and_key_words(transcriber, audio_clips, clip):
    recognition = transcriber.transcribe_bytes(audio_clips.bytes(clip))
    transcript = core.summarise(recognition, VOICE_NOTE, "bundled:base")

    words = normalise_words(transcript.text)
    assert "commande" in words and "facture" in words, transcript.text
    assert ORDER_CODE in digits(transcript.text), transcript.text
    assert transcript.language == "fr"
    assert transcript.language_probability and transcript.language_probability > 0.5
    assert not transcript.no_speech
    assert 3.0 < (transcript.duration_s or 0) < 10.0
    assert transcript.confidence is not None and 0.0 < transcript.confidence <= 1.0


def test_silence_is_no_speech_not_hallucinated_text(transcriber, audio_clips):
    recognition = transcriber.transcribe_bytes(audio_clips.bytes("silence_wav"))
    transcript = core.summarise(recognition, VOICE_NOTE, "bundled:base")

    assert transcript.no_speech
    assert transcript.text == ""
    assert transcript.duration_s == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("data, error", [
    (b"", EmptyAudio),
    (None, CorruptAudio),  # the corrupt fixture
    (b"%PDF-1.7 not a recording at all" * 20, CorruptAudio),
])
def test_unusable_audio_is_flagged_with_a_reason_not_raised_blindly(transcriber, audio_clips,
                                                                      data, error):
    payload = audio_clips.bytes("corrupt_ogg") if data is None else data
    with pytest.raises(error) as caught:
        transcriber.transcribe_bytes(payload)
    assert caught.value.describe().startswith(error.code)


def test_recording_over_the_maximum_is_refused_before_inference(transcriber, audio_clips):
    short_limit = Transcriber(transcriber.config.model_copy(update={"max_audio_seconds": 2.0}))
    short_limit._model = transcriber.load()  # same loaded model: no second load
    with pytest.raises(AudioTooLong, match="> 2 s"):
        short_limit.transcribe_bytes(audio_clips.bytes("late_order_wav"))


def test_language_list_restricts_detection(transcriber, audio_clips):
    config: TranscribeConfig = transcriber.config.model_copy(update={"languages": ["en", "fr"]})
    restricted = Transcriber(config)
    restricted._model = transcriber.load()
    recognition = restricted.transcribe_bytes(audio_clips.bytes("late_order_ogg"))
    assert recognition.language == "fr"
    assert "commande" in normalise_words(" ".join(s.text for s in recognition.segments))


async def test_transcription_leaves_the_event_loop_free(transcriber, audio_clips):
    """While a recording is transcribed the loop keeps running (heartbeats, text messages)."""
    ticks = 0
    done = False

    async def heartbeat() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0.01)

    beating = asyncio.create_task(heartbeat())
    try:
        recognition = await transcriber.transcribe(audio_clips.bytes("late_order_ogg"))
    finally:
        done = True
        await beating
    assert recognition.segments
    # A blocked loop would tick once or twice; a free one ticks every 10 ms for seconds.
    assert ticks >= 20, ticks


@pytest.mark.parametrize("suffix, codec", [
    (".mp3", ["-c:a", "libmp3lame"]),  # Twilio recordings
    (".m4a", ["-c:a", "aac"]),  # iPhone voice memos attached to e-mails
    (".wav", ["-ac", "2", "-ar", "44100"]),  # stereo 44.1 kHz: resampled to 16 kHz mono
])
def test_other_recording_formats_decode_to_16khz_mono(audio_clips, tmp_path, suffix, codec):
    converted = tmp_path / f"late-order{suffix}"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(audio_clips.late_order_wav),
                    *codec, str(converted)], check=True, capture_output=True, timeout=60)
    wav_seconds = audio.decode(audio_clips.bytes("late_order_wav"), 60).size / audio.SAMPLE_RATE
    samples = audio.decode(converted.read_bytes(), 60)
    assert samples.ndim == 1 and samples.dtype.name == "float32"
    assert samples.size / audio.SAMPLE_RATE == pytest.approx(wav_seconds, abs=0.1)
    assert 0.05 < float(abs(samples).max()) <= 1.0  # speech, not silence or clipping garbage


def test_a_file_without_audio_stream_is_unsupported(tmp_path):
    picture = tmp_path / "screenshot.png"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=blue:s=32x32:d=1", "-frames:v", "1", str(picture)],
                   check=True, capture_output=True, timeout=60)
    with pytest.raises(UnsupportedAudio, match="no audio stream"):
        audio.decode(picture.read_bytes(), 60)


def _phone_band(source, tmp_path, repeat: int = 1):  # type: ignore[no-untyped-def]
    """The recording as Twilio records a call: 8 kHz mono, 300-3400 Hz (``repeat`` times)."""
    out = tmp_path / f"phone-{repeat}.wav"
    subprocess.run(["sox", *([str(source)] * repeat), "-r", "8000", "-c", "1", "-b", "16",
                    str(out), "sinc", "300-3400"], check=True, capture_output=True, timeout=60)
    return out.read_bytes()


def test_phone_band_voicemail_is_transcribed_in_the_account_language(transcriber, audio_clips,
                                                                     tmp_path):
    voicemail = _phone_band(audio_clips.late_order_wav, tmp_path)
    recognition = transcriber.transcribe_bytes(voicemail, "fr")
    transcript = core.summarise(recognition, VOICE_NOTE, "bundled:base")
    assert transcript.language == "fr" and transcript.language_source == "account"
    assert transcript.text and not transcript.no_speech
    assert transcript.speech_s and transcript.speech_s > 2.0


def test_a_recording_past_its_time_budget_keeps_its_text_and_says_so(transcriber, audio_clips,
                                                                     tmp_path):
    # Six times the order call (~30 s, several segments); a budget of nothing: the first segment is
    # kept, the rest is not decoded.
    hurried = Transcriber(transcriber.config.model_copy(
        update={"max_realtime_factor": 0.001, "min_budget_seconds": 0.0}))
    hurried._model = transcriber.load()
    long_call = _phone_band(audio_clips.late_order_wav, tmp_path, repeat=6)
    recognition = hurried.transcribe_bytes(long_call, "fr")
    transcript = core.summarise(recognition, VOICE_NOTE, "bundled:base")
    assert "time_bound" in transcript.flags
    assert transcript.text and not transcript.no_speech
    assert recognition.segments[-1].end < recognition.duration_s - 1.0
