"""The transcribe stage's pure core: what needs a transcriber, and what a transcript says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.envelope import Attachment, AttachmentKind, Channel, Envelope, Sender, Transcript
from pipeline.transcribe import core
from pipeline.transcribe.core import Recognition, Segment

RECEIVED = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def audio(uri: str | None, error: str | None = None) -> Attachment:
    return Attachment(kind=AttachmentKind.AUDIO, content_type="audio/ogg", uri=uri, error=error,
                      filename="note.ogg")


def message(*attachments: Attachment, text: str = "", channel: Channel = Channel.WHATSAPP,
            transcripts: list[Transcript] | None = None) -> Envelope:
    return Envelope(channel=channel, source_id="SM1", received_at=RECEIVED,
                    sender=Sender(phone="+33612345678"), text=text,
                    attachments=list(attachments), transcripts=transcripts or [])


@pytest.mark.parametrize("envelope, needs", [
    (message(text="Bonjour, ma facture F-2024-118 est fausse."), False),
    (message(Attachment(kind=AttachmentKind.IMAGE, content_type="image/png", uri="file:///s"),
             text="Voici la capture d'écran de l'erreur"), False),
    (message(audio("file:///blobs/ab/abc")), True),
    (message(audio("file:///blobs/ab/abc"), text="Voir le message vocal", channel=Channel.EMAIL),
     True),
    (message(audio(None, error="download failed: 404")), False),  # nothing to fetch
    (message(audio("file:///blobs/ab/abc"),
             transcripts=[Transcript(attachment_uri="file:///blobs/ab/abc", text="Bonjour")]),
     False),  # redelivered after transcription: not transcribed twice
])
def test_only_untranscribed_stored_audio_waits_for_a_transcriber(envelope, needs):
    assert core.needs_transcriber(envelope) is needs


def test_the_same_recording_attached_twice_is_transcribed_once():
    envelope = message(audio("file:///blobs/ab/abc"), audio("file:///blobs/ab/abc"),
                       audio("file:///blobs/cd/cde"))
    assert [a.uri for a in core.pending_audio(envelope)] == ["file:///blobs/ab/abc",
                                                             "file:///blobs/cd/cde"]


def test_audio_the_connector_could_not_store_gets_an_error_transcript():
    envelope = message(audio(None, error="Twilio media download failed: 404"))
    [missing] = core.unavailable_audio(envelope)
    transcript = core.unavailable_transcript(missing, "bundled:base")
    assert transcript.error == "attachment_unavailable: Twilio media download failed: 404"
    assert transcript.attachment_uri == "note.ogg"
    # Once recorded, the same attachment is not reported twice on a replay.
    assert core.unavailable_audio(core.with_transcripts(envelope, [transcript])) == []


@pytest.mark.parametrize("probabilities, allowed, expected", [
    ([("fr", 0.7), ("en", 0.2), ("la", 0.1)], [], ("fr", 0.7)),
    ([("la", 0.5), ("fr", 0.3), ("en", 0.2)], ["fr", "en"], ("fr", 0.3)),
    # None of them: the first configured language (the list is in order of preference).
    ([("la", 0.5), ("it", 0.5)], ["FR", "en"], ("fr", 0.0)),
])
def test_language_is_the_likeliest_allowed_one(probabilities, allowed, expected):
    assert core.choose_language(probabilities, allowed) == expected


def test_summary_joins_segments_and_weights_confidence_by_tokens():
    recognition = Recognition(
        segments=(Segment(" Bonjour, ma commande 2047 est en retard.", 0.0, 2.5, -0.1, 0.01, 30),
                  Segment(" La facture est fausse.", 2.5, 4.0, -1.0, 0.02, 10)),
        language="fr", language_probability=0.98765, duration_s=4.2761)
    transcript = core.summarise(recognition, audio("file:///b/1"), "bundled:base")
    assert transcript.text == "Bonjour, ma commande 2047 est en retard. La facture est fausse."
    assert transcript.language == "fr" and transcript.language_probability == 0.9877
    assert transcript.duration_s == 4.276
    assert transcript.confidence == pytest.approx(0.7225, abs=1e-3)  # exp((-3 - 10) / 40)
    assert not transcript.no_speech and transcript.error is None
    assert transcript.attachment_uri == "file:///b/1" and transcript.model == "bundled:base"


def test_nothing_recognised_is_no_speech_without_a_language():
    transcript = core.summarise(Recognition((), "en", 0.4, 3.0), audio("file:///b/2"), "m")
    assert transcript.no_speech and transcript.text == ""
    assert transcript.language is None and transcript.confidence is None
    assert transcript.duration_s == 3.0


def test_adding_transcripts_leaves_the_original_untouched():
    envelope = message(audio("file:///b/1"), text="Voir le vocal")
    added = core.with_transcripts(envelope, [Transcript(attachment_uri="file:///b/1", text="x")])
    assert envelope.transcripts == [] and len(added.transcripts) == 1
    assert added.model_dump(exclude={"transcripts"}) == envelope.model_dump(exclude={"transcripts"})


@pytest.mark.parametrize("account, allowed, expected", [
    ("fr", ["fr", "en"], core.LanguagePlan("fr", "account", ("fr", "en"))),
    ("EN", ["fr", "en"], core.LanguagePlan("en", "account", ("fr", "en"))),
    ("fr-BE", ["fr", "en"], core.LanguagePlan("fr", "account", ("fr", "en"))),
    # A language the desk does not handle is not forced: detection among the handled ones.
    ("de", ["fr", "en"], core.LanguagePlan(None, "detect", ("fr", "en"))),
    (None, ["fr", "en"], core.LanguagePlan(None, "detect", ("fr", "en"))),
    (None, ["fr"], core.LanguagePlan("fr", "forced", ("fr",))),
    ("de", ["fr"], core.LanguagePlan("fr", "forced", ("fr",))),
    ("th", [], core.LanguagePlan("th", "account", ())),
    (None, [], core.LanguagePlan(None, "detect", ())),
])
def test_the_customers_language_comes_first_within_the_desks_languages(account, allowed,
                                                                        expected):
    assert core.plan_language(account, allowed) == expected


def test_a_detected_language_outside_the_list_is_never_accepted():
    # What Whisper base said of a French voicemail at 8 kHz.
    probabilities = [("th", 0.49), ("en", 0.21), ("fr", 0.18), ("lo", 0.05)]
    assert core.choose_language(probabilities, ["fr", "en"]) == ("en", 0.21)


@pytest.mark.parametrize("text, expected, cut", [
    ("Bonjour, ma commande est en retard.", "Bonjour, ma commande est en retard.", False),
    ("non non non, ce n'est pas ça", "non non non, ce n'est pas ça", False),
    ("Merci. Merci. Merci. Merci. Merci. Merci.", "Merci.", True),
    ("la facture est fausse la facture est fausse la facture est fausse la facture est fausse",
     "la facture est fausse", True),
    ("Bonjour, je voudrais le remboursement, le remboursement, le remboursement, "
     "le remboursement. Merci", "Bonjour, je voudrais le remboursement, Merci", True),
    # A whole sentence repeated (Whisper's usual loop), the last copy cut short by the cap.
    ("Bonjour. " + "je voudrais être remboursé de la commande deux mille quarante sept " * 4
     + "je voudrais être", "Bonjour. je voudrais être remboursé de la commande deux mille "
     "quarante sept", True),
    ("le colis le colis le colis. Merci", "le colis le colis le colis. Merci", False),
    # Loops without spaces; numbers are never loops (a phone number is five pairs).
    ("Allô ? ah!ah!ah!ah!ah!ah!ah!ah!", "Allô ? ah!", True),
    ("mon numéro 06 12 12 12 12, commande 1000000", "mon numéro 06 12 12 12 12, commande 1000000",
     False),
    ("rappelez le 0101010101 svp", "rappelez le 0101010101 svp", False),
])
def test_repetition_loops_are_cut_to_one_occurrence(text, expected, cut):
    assert core.cut_loops(text) == (expected, cut)


def test_time_budget_is_a_multiple_of_the_duration_with_a_floor():
    assert core.time_budget(4.0, 1.5, 10.0) == 10.0  # one encoder window costs the same
    assert core.time_budget(60.0, 1.5, 10.0) == 90.0


def test_speech_the_model_left_empty_is_not_silence():
    recognition = Recognition((), "fr", 1.0, 9.0, speech_s=7.2, language_source="account")
    transcript = core.summarise(recognition, audio("file:///b/3"), "m", min_speech_seconds=0.5)
    assert not transcript.no_speech and transcript.text == ""
    assert transcript.flags == ["speech_not_transcribed"]
    assert transcript.speech_s == 7.2 and transcript.language == "fr"


def test_a_click_on_a_silent_recording_is_no_speech():
    recognition = Recognition((), "fr", 1.0, 4.0, speech_s=0.3, language_source="account")
    transcript = core.summarise(recognition, audio("file:///b/4"), "m", min_speech_seconds=0.5)
    assert transcript.no_speech and transcript.flags == [] and transcript.language is None


def test_a_loop_and_a_bound_are_said_and_the_text_kept():
    looped = " Je voudrais un remboursement." + " s'il vous plaît" * 12
    recognition = Recognition((Segment(looped, 0.0, 30.0, -0.6, 0.1, 128),), "fr", 1.0, 60.0,
                              speech_s=55.0, language_source="account",
                              bounds=("token_cap", "time_bound"))
    transcript = core.summarise(recognition, audio("file:///b/5"), "m")
    assert transcript.text == "Je voudrais un remboursement. s'il vous plaît"
    assert transcript.flags == ["token_cap", "time_bound", "loop_cut"]
    assert transcript.language_source == "account"
