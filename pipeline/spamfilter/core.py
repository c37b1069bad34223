"""Spam filter: quarantine what no person should have to read, with a reason. Pure functions.

Rules run in a fixed order and the first that fires decides: auto-reply (a loop must never
reach an agent), unidentified sender, silent call, empty, incomprehensible, e-mail policy.
Each rule is switched per channel and tier by the policy (``policy.py``); a finding names
the reason code, a sentence for the person who reviews the quarantine, and the exact rule.

Speech is never quarantined for being hard to understand: a recording in which speech was
heard (a transcript, or speech the VAD detected that the model could not transcribe) goes to
an agent, flagged ``low_confidence_transcript`` with the recording's URI when the transcript
is unsure, incomplete or missing. Only recordings without speech are silent calls or empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.envelope import (
    Attachment,
    AttachmentKind,
    Channel,
    Envelope,
    SpamVerdict,
    Transcript,
)
from pipeline.spamfilter.gibberish import score
from pipeline.spamfilter.policy import QuarantineReason, SpamPolicy
from pipeline.spamfilter.text import clean_subject, strip_quotes_and_signature, without_greetings

R = QuarantineReason


@dataclass(frozen=True)
class Finding:
    reason: QuarantineReason
    rule: str
    explanation: str

    def verdict(self) -> SpamVerdict:
        return SpamVerdict(quarantined=True, reason=self.reason.value, rule=self.rule,
                           explanation=self.explanation)


def check_auto_reply(env: Envelope, policy: SpamPolicy) -> Finding | None:
    h = env.headers
    auto = h.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return Finding(R.AUTO_REPLY, "auto_reply.auto_submitted",
                       f"Automatic message (Auto-Submitted: {auto}), not written by a person.")
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if name in h:
            return Finding(R.AUTO_REPLY, "auto_reply.x_autoreply",
                           f"Automatic reply (header {name}), not written by a person.")
    precedence = h.get("precedence", "").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return Finding(R.AUTO_REPLY, "auto_reply.precedence",
                       f"Bulk or mailing-list e-mail (Precedence: {precedence}).")
    if "return-path" in h and h["return-path"].strip() in ("<>", ""):
        return Finding(R.AUTO_REPLY, "auto_reply.null_return_path",
                       "Bounce or delivery report (empty Return-Path).")
    if "x-loop" in h:
        return Finding(R.AUTO_REPLY, "auto_reply.loop",
                       f"Mail loop: this message already went through {h['x-loop']}.")
    local = (env.sender.email or "").split("@", 1)[0].strip().lower().lstrip("<")
    if local and local in policy.automatic_senders:
        return Finding(R.AUTO_REPLY, "auto_reply.automatic_sender",
                       f"Sent by an automatic mailbox ({env.sender.email}), not a person.")
    subject = (env.subject or "").strip().lower()
    for start in policy.auto_reply_subjects:
        if subject.startswith(start):
            return Finding(R.AUTO_REPLY, "auto_reply.subject",
                           f"Out-of-office or delivery report (subject starts with "
                           f"\u201c{start}\u201d).")
    return None


def check_unidentified(env: Envelope, policy: SpamPolicy) -> Finding | None:
    identity = env.identity
    if identity is not None and identity.identified:
        return None
    tried = ", ".join(identity.tried) if identity and identity.tried else "no address"
    if identity is not None and identity.ambiguous:
        return Finding(R.UNIDENTIFIED, "unidentified.ambiguous",
                       f"The sender's address is registered under several customer accounts "
                       f"({', '.join(identity.candidates)}); we do not guess which one.")
    return Finding(R.UNIDENTIFIED, "unidentified.unknown",
                   f"The sender is not a registered employee of any customer account "
                   f"(tried: {tried}).")


_PUNCTUATION = re.compile(r"[^\w\s'-]+")


# Transcript flags that make its text unreliable (engine: pipeline/transcribe/core.py).
UNSURE_TRANSCRIPT_FLAGS = frozenset({"speech_not_transcribed", "time_bound", "token_cap",
                                     "loop_cut"})


def _speech(transcript: Transcript, policy: SpamPolicy) -> bool:
    """Whether a transcript holds speech (not silence, an error, or a known hallucination).

    Speech the VAD detected but the model left empty is speech. A known hallucination
    ("thank you for watching") counts only when the VAD heard enough speech under it.
    """
    if transcript.error:
        # A recording that could not be transcribed (too long, a decoder or model failure)
        # may hold a request: a person listens. Only errors that prove there is nothing to
        # hear (zero bytes, no samples) count as no speech.
        return _error_code(transcript.error) not in policy.no_speech_audio_errors
    if transcript.no_speech:
        return False
    if "speech_not_transcribed" in transcript.flags:
        return True
    if not transcript.text.strip():
        return False
    said = " ".join(_PUNCTUATION.sub(" ", transcript.text.lower()).split())
    phrases = {" ".join(_PUNCTUATION.sub(" ", p.lower()).split())
               for p in policy.no_speech_phrases}
    if said not in phrases:
        return True
    return (transcript.speech_s or 0.0) >= policy.thresholds.hallucination_min_speech_seconds


def _error_code(error: str) -> str:
    """``"too_long: 720 s > 600 s"`` -> ``"too_long"`` (the transcribe stage's error codes)."""
    return error.split(":", 1)[0].strip()


def _heard(env: Envelope, policy: SpamPolicy) -> list[Transcript]:
    """Transcripts that contain speech."""
    return [t for t in env.transcripts if _speech(t, policy)]


def check_silent_call(env: Envelope, policy: SpamPolicy) -> Finding | None:
    if env.channel is not Channel.VOICEMAIL:
        return None
    recordings = [a for a in env.audio_attachments if a.uri and not a.error and a.size != 0]
    if not recordings:
        return Finding(R.SILENT_CALL, "silent_call.no_recording",
                       "Call without a message: no voicemail was recorded.")
    if env.transcripts and not _heard(env, policy) and not env.text.strip():
        return Finding(R.SILENT_CALL, "silent_call.no_speech",
                       "Call without a message: the voicemail contains no speech.")
    return None


def _useful(attachment: Attachment, env: Envelope, policy: SpamPolicy) -> bool:
    if attachment.error or not attachment.uri:
        return False
    if attachment.kind is AttachmentKind.IMAGE:
        return attachment.size >= policy.thresholds.min_image_bytes
    if attachment.kind is AttachmentKind.AUDIO:
        transcripts = [t for t in env.transcripts if t.attachment_uri in (None, attachment.uri)]
        # Not transcribed (yet): a person can still listen to it.
        return not transcripts or any(_speech(t, policy) for t in transcripts)
    return attachment.size > 0


def readable_text(env: Envelope) -> str:
    """The subject (email) and the new part of the body, without quotes or signature."""
    parts = [clean_subject(env.subject) if env.channel is Channel.EMAIL else "",
             strip_quotes_and_signature(env.text)]
    return "\n".join(p for p in parts if p)


def check_empty(env: Envelope, policy: SpamPolicy) -> Finding | None:
    if any(_useful(a, env, policy) for a in env.attachments):
        return None
    if any(a.uri and not a.error for a in env.audio_attachments):
        return None  # a recording without speech is judged by silent_call / incomprehensible
    if without_greetings(readable_text(env)) or _heard(env, policy):
        return None
    if env.attachments:
        return Finding(R.EMPTY, "empty.no_useful_attachment",
                       "No text and no usable attachment (only a tiny image, or a file that "
                       "could not be kept).")
    if env.text.strip() or env.subject:
        return Finding(R.EMPTY, "empty.courtesy_only",
                       "Nothing to act on: only greetings, a signature or quoted text.")
    return Finding(R.EMPTY, "empty.no_content", "The message is empty.")


def check_incomprehensible(env: Envelope, policy: SpamPolicy) -> Finding | None:
    th = policy.thresholds
    if any(_useful(a, env, policy) and a.kind is not AttachmentKind.AUDIO
           for a in env.attachments):
        return None  # a screenshot or a document speaks for itself
    text = readable_text(env)
    if text and without_greetings(text):
        judged = score(text)
        if not judged.is_gibberish(th.gibberish_ratio, th.gibberish_min_letters):
            return None
        if judged.mojibake:
            return Finding(R.INCOMPREHENSIBLE, "incomprehensible.mojibake",
                           "The text is garbled (wrong character encoding).")
        words = ", ".join(judged.bad_words[:3])
        text_finding = Finding(R.INCOMPREHENSIBLE, "incomprehensible.gibberish",
                               f"The text is not readable words ({words}).")
        if not env.transcripts:
            return text_finding
    else:
        text_finding = None
    if not env.transcripts:
        return None
    if _heard(env, policy):
        return None  # speech goes to an agent, flagged when unsure (review_flags)
    return text_finding or Finding(R.INCOMPREHENSIBLE, "incomprehensible.no_speech",
                                   "The audio message contains no speech.")


def unsure_transcripts(env: Envelope, policy: SpamPolicy) -> list[Transcript]:
    """Transcripts of speech an agent should check against the recording.

    Low confidence, not readable words, speech the model could not transcribe, decoding
    stopped at a bound (time, token cap, a cut loop), or a recording that could not be
    transcribed at all (too long, model failure) and may hold speech.
    """
    th = policy.thresholds
    unsure: list[Transcript] = []
    for t in _heard(env, policy):
        if (t.error or UNSURE_TRANSCRIPT_FLAGS & set(t.flags)
                or (t.confidence is not None and t.confidence < th.min_transcript_confidence)
                or score(t.text).is_gibberish(th.gibberish_ratio, th.gibberish_min_letters)):
            unsure.append(t)
    return unsure


def review_flags(env: Envelope, policy: SpamPolicy) -> SpamVerdict:
    """The verdict of an accepted message, with ``low_confidence_transcript`` when due."""
    unsure = unsure_transcripts(env, policy)
    if not unsure:
        return SpamVerdict(quarantined=False)
    uris = [t.attachment_uri for t in unsure if t.attachment_uri]
    why = ", ".join(_unsure_reason(t, policy) for t in unsure)
    return SpamVerdict(quarantined=False, flags=["low_confidence_transcript"],
                       listen_to=list(dict.fromkeys(uris)),
                       explanation=f"The recording may hold a request but its transcript "
                                   f"is unsure, incomplete or missing ({why}): listen to "
                                   f"the recording.")


def _unsure_reason(t: Transcript, policy: SpamPolicy) -> str:
    if t.error:
        return f"not transcribed: {_error_code(t.error)}"
    if "speech_not_transcribed" in t.flags:
        return "speech detected, nothing transcribed"
    bounds = sorted(UNSURE_TRANSCRIPT_FLAGS & set(t.flags))
    if bounds:
        return "decoding stopped: " + "/".join(bounds)
    if t.confidence is not None and t.confidence < policy.thresholds.min_transcript_confidence:
        return f"confidence {t.confidence:.2f}"
    return "not readable words"


def review_notes(verdict: SpamVerdict) -> list[str]:
    """Envelope notes for the agent (the helpdesk shows them with the case)."""
    if "low_confidence_transcript" not in verdict.flags:
        return []
    return [f"low_confidence_transcript: {verdict.explanation} Recording: {uri}"
            for uri in verdict.listen_to] or [f"low_confidence_transcript: {verdict.explanation}"]


def is_case_reply(env: Envelope) -> bool:
    t = env.thread
    return bool(t.in_reply_to or t.references or t.case_tag)


def check_email_policy(env: Envelope, policy: SpamPolicy) -> Finding | None:
    if env.channel is not Channel.EMAIL:
        return None
    tier = env.identity.tier if env.identity else None
    if policy.email_support(tier) or is_case_reply(env):
        return None
    content = f"{env.subject or ''}\n{env.text}".lower()
    if any(phrase in content for phrase in policy.lost_password_phrases):
        return None
    return Finding(R.EMAIL_POLICY, "email_policy.no_email_support",
                   f"E-mail from a {tier or 'unknown'}-tier customer, whose contract has no "
                   f"e-mail support, that is neither a reply to an existing case nor a "
                   f"lost-password request.")


Check = Callable[[Envelope, SpamPolicy], Finding | None]
CHECKS: tuple[tuple[QuarantineReason, Check], ...] = (
    (R.AUTO_REPLY, check_auto_reply),
    (R.UNIDENTIFIED, check_unidentified),
    (R.SILENT_CALL, check_silent_call),
    (R.EMPTY, check_empty),
    (R.INCOMPREHENSIBLE, check_incomprehensible),
    (R.EMAIL_POLICY, check_email_policy),
)


# Checks that need no content (no transcript): run before a recording is transcribed.
WITHOUT_CONTENT = frozenset({R.AUTO_REPLY, R.UNIDENTIFIED, R.EMAIL_POLICY})


def _first_finding(env: Envelope, policy: SpamPolicy,
                   checks: tuple[tuple[QuarantineReason, Check], ...]) -> Finding | None:
    tier = env.identity.tier if env.identity else None
    for reason, check in checks:
        if not policy.enabled(reason, env.channel.value, tier):
            continue
        finding = check(env, policy)
        if finding is not None:
            return finding
    return None


def judge(env: Envelope, policy: SpamPolicy) -> SpamVerdict:
    """The first enabled rule that fires quarantines the message; otherwise it is accepted."""
    finding = _first_finding(env, policy, CHECKS)
    return finding.verdict() if finding is not None else review_flags(env, policy)


def judge_without_content(env: Envelope, policy: SpamPolicy) -> SpamVerdict:
    """The verdict of the checks that need no content; accepted here means "transcribe it".

    The same rules in the same order as ``judge``: a message they pass is judged in full
    once transcribed, and ends as ``judge`` alone would have ended it.
    """
    finding = _first_finding(env, policy,
                             tuple(c for c in CHECKS if c[0] in WITHOUT_CONTENT))
    return finding.verdict() if finding is not None else SpamVerdict(quarantined=False)
