"""The quarantine policy (``config/spam.yaml``): which rules apply per channel and tier.

Resolution for one message: ``rules`` (defaults) < ``channels.<channel>`` <
``tiers.<tier>`` < ``tiers.<tier>.channels.<channel>``; a key left out inherits. Loaded with
``pipeline.configfile`` so a broken file is reported as ``spam.yaml:12 key: problem``.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from pipeline.configfile import load_yaml, parse_yaml, validate

log = logging.getLogger(__name__)


class QuarantineReason(StrEnum):
    """Why a message was quarantined (the ``reason`` code on ``messages.spam``)."""

    AUTO_REPLY = "auto_reply"
    UNIDENTIFIED = "unidentified"
    SILENT_CALL = "silent_call"
    EMPTY = "empty"
    INCOMPREHENSIBLE = "incomprehensible"
    EMAIL_POLICY = "email_policy"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleSwitches(_Strict):
    """Each rule on or off; ``None`` inherits from the broader level."""

    auto_reply: bool | None = None
    unidentified: bool | None = None
    silent_call: bool | None = None
    empty: bool | None = None
    incomprehensible: bool | None = None
    email_policy: bool | None = None


class TierPolicy(RuleSwitches):
    # Whether the tier's contract includes e-mail support (the email_policy rule).
    email_support: bool | None = None
    channels: dict[str, RuleSwitches] = Field(default_factory=dict)


class Thresholds(_Strict):
    # Share of a text's letters in implausible words above which it is gibberish.
    gibberish_ratio: float = Field(0.5, ge=0, le=1)
    # Texts with fewer letters are never judged gibberish (too little evidence).
    gibberish_min_letters: int = Field(3, ge=0)
    # Transcripts of speech below this confidence (mean token probability, 0-1) are routed
    # flagged low_confidence_transcript, with the recording's URI (speech is never
    # quarantined for being hard to understand).
    min_transcript_confidence: float = Field(0.35, ge=0, le=1)
    # A transcript made only of a no_speech_phrases hallucination still counts as speech
    # when the VAD heard at least this much speech (seconds) under it.
    hallucination_min_speech_seconds: float = Field(1.5, ge=0)
    # Smaller images are signature logos or tracking pixels, not a useful attachment.
    min_image_bytes: int = Field(4096, ge=0)


class SpamPolicy(_Strict):
    """The whole policy file."""

    rules: RuleSwitches = Field(default_factory=lambda: RuleSwitches(
        auto_reply=True, unidentified=True, silent_call=True, empty=True,
        incomprehensible=True, email_policy=True))
    # Tiers not listed (and unidentified senders) get this.
    default_email_support: bool = False
    # Built-in defaults match the shipped config/spam.yaml.
    channels: dict[str, RuleSwitches] = Field(default_factory=lambda: {
        "chat": RuleSwitches(unidentified=False)})
    tiers: dict[str, TierPolicy] = Field(default_factory=lambda: {
        "standard": TierPolicy(email_support=False), "premium": TierPolicy(email_support=True)})
    thresholds: Thresholds = Field(default_factory=Thresholds)
    # Lower-case substrings that make an e-mail a lost-password request (always let through).
    lost_password_phrases: list[str] = Field(default_factory=lambda: [
        "mot de passe", "mdp", "password", "identifiant oublié", "reset"])
    # Local parts of automatic senders.
    automatic_senders: list[str] = Field(default_factory=lambda: [
        "mailer-daemon", "postmaster", "no-reply", "noreply", "donotreply", "do-not-reply"])
    # Subject starts of out-of-office replies sent without RFC 3834 headers.
    auto_reply_subjects: list[str] = Field(default_factory=lambda: [
        "réponse automatique", "automatic reply", "auto:", "absence du bureau",
        "out of office", "undeliverable", "delivery status notification",
        "mail delivery failed", "non remis"])

    # What speech-to-text models (Whisper) write for silence or noise: a transcript made only
    # of these counts as no speech. Compared lower-case, without punctuation.
    no_speech_phrases: list[str] = Field(default_factory=lambda: [
        "sous-titres réalisés par la communauté d'amara.org", "sous-titrage st' 501",
        "sous-titrage société radio-canada", "merci d'avoir regardé cette vidéo",
        "merci d'avoir regardé", "thank you for watching", "thanks for watching",
        "subtitles by the amara.org community", "you"])

    # Transcript error codes (pipeline/transcribe/errors.py) that prove a recording holds
    # nothing to hear. Any other error (too_long, corrupt_audio, transcription_failed, ...)
    # may hide a request: routed flagged low_confidence_transcript, never quarantined.
    no_speech_audio_errors: list[str] = Field(default_factory=lambda: ["empty_audio"])

    def enabled(self, rule: QuarantineReason, channel: str, tier: str | None) -> bool:
        """Whether ``rule`` applies to a message of ``channel`` from ``tier``."""
        value = getattr(self.rules, rule.value)
        layers: list[RuleSwitches | None] = [self.channels.get(channel)]
        tier_policy = self.tiers.get(tier) if tier else None
        if tier_policy is not None:
            layers += [tier_policy, tier_policy.channels.get(channel)]
        for layer in layers:
            if layer is not None and getattr(layer, rule.value) is not None:
                value = getattr(layer, rule.value)
        return bool(value)

    def email_support(self, tier: str | None) -> bool:
        tier_policy = self.tiers.get(tier) if tier else None
        if tier_policy is not None and tier_policy.email_support is not None:
            return tier_policy.email_support
        return self.default_email_support


DEFAULT_POLICY_PATH = "config/spam.yaml"


def load_policy(path: str | Path) -> SpamPolicy:
    """Read and validate the policy file; errors name the file and line.

    Only the default path may be missing (a worker started outside the repository): the
    built-in defaults, identical to the shipped file, apply. A path someone configured must
    exist.
    """
    if str(path) == DEFAULT_POLICY_PATH and not Path(path).exists():
        log.warning("event=spam_policy_default path=%s missing: built-in policy applies", path)
        return SpamPolicy()
    return validate(SpamPolicy, load_yaml(path))


def parse_policy(text: str, path: str = "<string>") -> SpamPolicy:
    return validate(SpamPolicy, parse_yaml(text, path))
