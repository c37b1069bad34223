"""Every quarantine reason, and the real messages that must NOT be quarantined."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.envelope import (
    Attachment,
    AttachmentKind,
    Channel,
    Envelope,
    Identity,
    Sender,
    Thread,
    Transcript,
)
from pipeline.errors import ConfigError
from pipeline.spamfilter.core import judge, review_notes
from pipeline.spamfilter.policy import load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(ROOT / "config" / "spam.yaml")

STANDARD = Identity(identified=True, account_id="ACC-1042", tier="standard", matched_by="phone")
PREMIUM = Identity(identified=True, account_id="ACC-2077", tier="premium", matched_by="email")
UNKNOWN = Identity(identified=False, tried=["phone:+33600000001"])
AMBIGUOUS = Identity(identified=False, ambiguous=True, candidates=["ACC-1042", "ACC-2077"],
                     tried=["email:sophie@cabinet-martin.fr"])

SCREENSHOT = Attachment(kind=AttachmentKind.IMAGE, content_type="image/png", size=184_220,
                        uri="file:///blobs/ab/screenshot.png")
LOGO = Attachment(kind=AttachmentKind.IMAGE, content_type="image/png", size=1_204,
                  uri="file:///blobs/cd/logo.png")
RECORDING = Attachment(kind=AttachmentKind.AUDIO, content_type="audio/wav", size=96_000,
                       uri="file:///blobs/ef/voicemail.wav")
FAILED = Attachment(kind=AttachmentKind.DOCUMENT, content_type="application/pdf", size=0,
                    error="download failed: 404")


def msg(channel: Channel = Channel.WHATSAPP, text: str = "", identity: Identity = STANDARD,
        **fields: object) -> Envelope:
    sender = fields.pop("sender", Sender(phone="+33612345678"))
    return Envelope(channel=channel, source_id="S1", received_at=datetime(2026, 11, 23, tzinfo=UTC),
                    text=text, identity=identity, sender=sender, **fields)


def heard(text: str, confidence: float | None = 0.9, no_speech: bool = False,
          speech_s: float | None = None, flags: tuple[str, ...] = ()) -> Transcript:
    return Transcript(attachment_uri=RECORDING.uri, text=text, confidence=confidence,
                      no_speech=no_speech, language=None if no_speech else "fr",
                      speech_s=speech_s, flags=list(flags))


def failed(error: str) -> Transcript:
    return Transcript(attachment_uri=RECORDING.uri, error=error, model="bundled:base")


QUARANTINED = [
    # (why, envelope, reason, rule)
    ("out-of-office with RFC 3834", msg(Channel.EMAIL, "Je suis absente jusqu'au 2 décembre.",
     PREMIUM, headers={"Auto-Submitted": "auto-replied"}), "auto_reply",
     "auto_reply.auto_submitted"),
    ("X-Autoreply", msg(Channel.EMAIL, "I am out of the office.", PREMIUM,
     headers={"X-Autoreply": "yes"}), "auto_reply", "auto_reply.x_autoreply"),
    ("X-Autorespond", msg(Channel.EMAIL, "Merci pour votre message.", PREMIUM,
     headers={"x-autorespond": "1"}), "auto_reply", "auto_reply.x_autoreply"),
    ("newsletter", msg(Channel.EMAIL, "Nos offres de Noël", PREMIUM,
     headers={"precedence": "bulk"}), "auto_reply", "auto_reply.precedence"),
    ("mailing list", msg(Channel.EMAIL, "Digest", PREMIUM, headers={"Precedence": "list"}),
     "auto_reply", "auto_reply.precedence"),
    ("bounce", msg(Channel.EMAIL, "Delivery failed", PREMIUM, headers={"return-path": "<>"}),
     "auto_reply", "auto_reply.null_return_path"),
    ("mailer-daemon", msg(Channel.EMAIL, "Undelivered mail", UNKNOWN,
     sender=Sender(email="MAILER-DAEMON@mail.example.com")), "auto_reply",
     "auto_reply.automatic_sender"),
    ("loop", msg(Channel.EMAIL, "Re: votre demande", PREMIUM,
     headers={"x-loop": "support@hangers.fr"}), "auto_reply", "auto_reply.loop"),
    ("unknown sender", msg(text="Où configurer la TVA ?", identity=UNKNOWN), "unidentified",
     "unidentified.unknown"),
    ("no identity at all", msg(text="Bonjour, ma caisse plante", identity=None),  # type: ignore[arg-type]
     "unidentified", "unidentified.unknown"),
    ("ambiguous sender", msg(Channel.EMAIL, "Facture F2024-118 ?", AMBIGUOUS), "unidentified",
     "unidentified.ambiguous"),
    ("call, no recording", msg(Channel.VOICEMAIL), "silent_call", "silent_call.no_recording"),
    ("call, recording failed", msg(Channel.VOICEMAIL, attachments=[RECORDING.model_copy(
        update={"error": "download failed", "uri": None})]), "silent_call",
     "silent_call.no_recording"),
    ("call, silence only", msg(Channel.VOICEMAIL, attachments=[RECORDING],
     transcripts=[heard("", no_speech=True)]), "silent_call", "silent_call.no_speech"),
    ("call, Whisper hallucinated on silence", msg(Channel.VOICEMAIL, attachments=[RECORDING],
     transcripts=[heard("Sous-titres réalisés par la communauté d'Amara.org", 0.6)]),
     "silent_call", "silent_call.no_speech"),
    ("voice note, 'Thank you for watching.' on noise", msg(attachments=[RECORDING],
     transcripts=[heard("Thank you for watching!", 0.7)]), "incomprehensible",
     "incomprehensible.no_speech"),
    ("nothing", msg(text="   "), "empty", "empty.no_content"),
    ("greetings only", msg(text="Bonjour,\n\nMerci !\n\nCordialement,\nMarie Dupont"),
     "empty", "empty.courtesy_only"),
    ("hello thanks", msg(text="Hi team, thanks"), "empty", "empty.courtesy_only"),
    ("quoted reply only", msg(Channel.EMAIL, "\n\nLe 22 nov. 2026 à 10:02, Support a écrit :\n"
     "> Votre demande est résolue.", PREMIUM, subject="Re:"), "empty", "empty.courtesy_only"),
    ("signature and mobile footer only", msg(Channel.EMAIL, "--\nClaire Lefèvre\nComptable\n"
     "Envoyé de mon iPhone", PREMIUM), "empty", "empty.courtesy_only"),
    ("emoji alone", msg(text="👍"), "empty", "empty.courtesy_only"),
    ("signature logo only", msg(Channel.EMAIL, "", PREMIUM, attachments=[LOGO]), "empty",
     "empty.no_useful_attachment"),
    ("failed download only", msg(text="", attachments=[FAILED]), "empty",
     "empty.no_useful_attachment"),
    ("keyboard mashing", msg(text="qsdfqsdfqsdf"), "incomprehensible",
     "incomprehensible.gibberish"),
    ("random characters", msg(text="xqzv jrtp mnbv"), "incomprehensible",
     "incomprehensible.gibberish"),
    ("mojibake", msg(Channel.EMAIL, "Merci de votre rÃ©ponse rapide, Ã  bientÃ´t", PREMIUM),
     "incomprehensible", "incomprehensible.mojibake"),
    ("voice note without speech", msg(attachments=[RECORDING],
     transcripts=[heard("", no_speech=True)]), "incomprehensible",
     "incomprehensible.no_speech"),
    ("8 kHz voicemail of line hiss (VAD found 0.2 s)", msg(
        Channel.VOICEMAIL, attachments=[RECORDING],
        transcripts=[heard("", confidence=None, no_speech=True, speech_s=0.2)]),
     "silent_call", "silent_call.no_speech"),
    ("voicemail recording of zero bytes", msg(Channel.VOICEMAIL, attachments=[RECORDING],
     transcripts=[failed("empty_audio: zero bytes")]), "silent_call", "silent_call.no_speech"),
    ("voicemail 'you' on 0.6 s of noise", msg(Channel.VOICEMAIL, attachments=[RECORDING],
     transcripts=[heard("you", 0.3, speech_s=0.6)]), "silent_call", "silent_call.no_speech"),
    ("standard-tier email, new topic", msg(Channel.EMAIL, "Comment exporter mes ventes en CSV ?",
     STANDARD, sender=Sender(email="marie.dupont@boulangerie-dupont.fr"),
     subject="Export des ventes"), "email_policy", "email_policy.no_email_support"),
]


@pytest.mark.parametrize("why,env,reason,rule", QUARANTINED, ids=[q[0] for q in QUARANTINED])
def test_quarantined_with_reason_rule_and_explanation(why, env, reason, rule):
    verdict = judge(env, POLICY)
    assert verdict.quarantined, why
    assert (verdict.reason, verdict.rule) == (reason, rule)
    assert verdict.explanation and verdict.explanation.endswith((".", ")")) and \
        len(verdict.explanation) > 20


ACCEPTED = [
    ("short real question", msg(text="Où configurer la TVA ?")),
    ("English question", msg(text="Where do I set up VAT?")),
    ("order code alone", msg(text="X45Q")),
    ("emoji plus screenshot", msg(text="😩", attachments=[SCREENSHOT])),
    ("screenshot alone", msg(text="", attachments=[SCREENSHOT])),
    ("reply to a case from standard tier", msg(
        Channel.EMAIL, "Toujours bloqué, voir capture.", STANDARD,
        sender=Sender(email="marie.dupont@boulangerie-dupont.fr"), subject="Re: [Case #48213]",
        thread=Thread(in_reply_to="<case-48213@support.hangers.fr>"))),
    ("case tag only", msg(Channel.EMAIL, "La facture est toujours fausse", STANDARD,
                          thread=Thread(case_tag="48213"))),
    ("lost password by email, standard tier", msg(
        Channel.EMAIL, "Bonjour, j'ai oublié mon mot de passe Selfcare", STANDARD,
        subject="Mot de passe oublié")),
    ("premium tier email, new topic", msg(Channel.EMAIL, "Comment exporter mes ventes en CSV ?",
                                          PREMIUM, subject="Export des ventes")),
    ("email with subject only", msg(Channel.EMAIL, "", PREMIUM,
                                    subject="Facture F2024-118 erronée")),
    ("greeting plus question", msg(text="Bonjour, la caisse ne s'allume plus. Merci")),
    ("voicemail with speech", msg(Channel.VOICEMAIL, attachments=[RECORDING], transcripts=[
        heard("Bonjour c'est Karim de la boulangerie Dupont, la caisse ne démarre plus")])),
    ("voicemail not transcribed yet", msg(Channel.VOICEMAIL, attachments=[RECORDING])),
    ("expressive French", msg(text="Nooooon ça marche toujours pas 😡")),
    ("in-app chat from signed user", msg(Channel.CHAT, "Où configurer la TVA ?", Identity(
        identified=True, account_id="ACC-1042", tier="standard", matched_by="app_identity"))),
    ("PDF invoice alone", msg(text="", attachments=[Attachment(
        kind=AttachmentKind.DOCUMENT, content_type="application/pdf", size=52_000,
        uri="file:///blobs/12/facture.pdf")])),
    ("normal email that says 'no' to Auto-Submitted", msg(
        Channel.EMAIL, "Où configurer la TVA ?", PREMIUM, headers={"auto-submitted": "no"})),
]


@pytest.mark.parametrize("why,env", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_real_messages_are_not_quarantined(why, env):
    verdict = judge(env, POLICY)
    assert not verdict.quarantined, f"{why}: {verdict.reason} {verdict.rule} {verdict.explanation}"
    assert verdict.flags == [], why


# Speech that is hard to understand is routed to a person, flagged, with the recording.
ROUTED_UNSURE = [
    ("mumbled voice note", msg(attachments=[RECORDING],
     transcripts=[heard("euh la chose", confidence=0.12)]), "confidence 0.12"),
    ("8 kHz French voicemail misheard", msg(Channel.VOICEMAIL, attachments=[RECORDING],
     transcripts=[heard("je voudrais être un boursé pour la fracture", 0.26, speech_s=8.1)]),
     "confidence 0.26"),
    ("voicemail: speech detected, nothing transcribed", msg(
        Channel.VOICEMAIL, attachments=[RECORDING],
        transcripts=[heard("", None, speech_s=6.4, flags=("speech_not_transcribed",))]),
     "speech detected, nothing transcribed"),
    ("voice note cut at the time bound", msg(attachments=[RECORDING], transcripts=[
        heard("Bonjour, ma commande n'est pas arrivée", 0.8, speech_s=40.0,
              flags=("time_bound",))]), "decoding stopped: time_bound"),
    ("transcript with a loop cut", msg(Channel.VOICEMAIL, attachments=[RECORDING], transcripts=[
        heard("Bonjour, la caisse affiche une erreur", 0.7, speech_s=9.0,
              flags=("loop_cut",))]), "decoding stopped: loop_cut"),
    ("transcribed gibberish from a voicemail", msg(Channel.VOICEMAIL, attachments=[RECORDING],
     transcripts=[heard("xqzv jrtp mnbv", 0.5, speech_s=5.0)]), "not readable words"),
    # Recordings that could not be transcribed may hold a request: a person listens.
    ("12-minute voicemail over max_audio_seconds", msg(Channel.VOICEMAIL, attachments=[
        RECORDING], transcripts=[failed("too_long: 720 s > 600 s")]),
     "not transcribed: too_long"),
    ("voice note the model failed on", msg(attachments=[RECORDING], transcripts=[
        failed("transcription_failed: RuntimeError")]), "not transcribed: transcription_failed"),
    ("voicemail truncated upload", msg(Channel.VOICEMAIL, attachments=[RECORDING], transcripts=[
        failed("corrupt_audio: Invalid data found")]), "not transcribed: corrupt_audio"),
    ("'Thank you for watching' over 9 s of speech", msg(Channel.VOICEMAIL,
     attachments=[RECORDING], transcripts=[heard("Thank you for watching!", 0.2,
                                                 speech_s=9.0)]), "confidence 0.20"),
]


@pytest.mark.parametrize("why,env,because", ROUTED_UNSURE, ids=[r[0] for r in ROUTED_UNSURE])
def test_speech_is_routed_flagged_with_the_recording(why, env, because):
    verdict = judge(env, POLICY)
    assert not verdict.quarantined, f"{why}: {verdict.rule} {verdict.explanation}"
    assert verdict.flags == ["low_confidence_transcript"], why
    assert verdict.listen_to == [RECORDING.uri]
    assert because in (verdict.explanation or "")
    [note] = review_notes(verdict)
    assert note.startswith("low_confidence_transcript:") and RECORDING.uri in note


def test_unidentified_rule_is_per_channel():
    # chat is exempt in the shipped policy; whatsapp is not.
    chat = msg(Channel.CHAT, "Où configurer la TVA ?", UNKNOWN)
    assert not judge(chat, POLICY).quarantined
    assert judge(msg(text="Où configurer la TVA ?", identity=UNKNOWN), POLICY).quarantined


def test_rules_switch_per_tier_and_channel():
    policy = parse_policy("""
rules: {empty: true}
channels:
  email: {empty: false}
tiers:
  vip:
    empty: false
  standard:
    channels:
      whatsapp: {empty: false}
    email_support: true
""")
    empty_whatsapp = msg(text="Bonjour")
    assert not judge(empty_whatsapp, policy).quarantined  # standard + whatsapp: off
    assert judge(msg(text="Bonjour", identity=PREMIUM), policy).quarantined
    vip = Identity(identified=True, account_id="A", tier="vip")
    assert not judge(msg(text="Bonjour", identity=vip), policy).quarantined
    assert not judge(msg(Channel.EMAIL, "Merci", PREMIUM), policy).quarantined
    standard_email = msg(Channel.EMAIL, "Comment exporter ?", STANDARD, subject="Export")
    assert not judge(standard_email, policy).quarantined  # email_support: true for standard


def test_built_in_policy_equals_the_shipped_file(tmp_path, monkeypatch):
    from pipeline.spamfilter.policy import SpamPolicy

    assert SpamPolicy() == POLICY
    monkeypatch.chdir(tmp_path)  # no config/ here: the default path falls back
    assert load_policy("config/spam.yaml") == POLICY
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "custom-spam.yaml")


def test_broken_policy_names_file_and_line(tmp_path):
    path = tmp_path / "spam.yaml"
    path.write_text("rules:\n  empty: true\ntiers:\n  premium:\n    email_suport: true\n")
    with pytest.raises(ConfigError, match=r"spam.yaml:5 tiers.premium.email_suport"):
        load_policy(path)
