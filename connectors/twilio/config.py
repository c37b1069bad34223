"""Settings of the Twilio connectors: WhatsApp and the voice line (section ``twilio``)."""

from __future__ import annotations

import re
from datetime import time

from pydantic import BaseModel, Field, SecretStr, field_validator

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class BusinessHours(BaseModel):
    """When the voice line is staffed (the seeds' line: Monday–Friday 9:30–19:00, Paris)."""

    timezone: str = "Europe/Paris"
    days: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    open: str = "09:30"
    close: str = "19:00"
    # Public holidays and closures (YYYY-MM-DD, local dates): the out-of-hours greeting plays.
    closed_dates: list[str] = Field(default_factory=list)

    @field_validator("days")
    @classmethod
    def _weekdays(cls, days: list[str]) -> list[str]:
        lowered = [d.strip().lower()[:3] for d in days]
        unknown = [d for d in lowered if d not in _WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown weekday(s) {unknown}; use {', '.join(_WEEKDAYS)}")
        return lowered

    @field_validator("open", "close")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be HH:MM (24 h), e.g. 09:30")
        return value

    def opening(self) -> tuple[time, time]:
        return time.fromisoformat(self.open), time.fromisoformat(self.close)


class VoiceConfig(BaseModel):
    """The voicemail line: greetings, recording limits, callback paths."""

    path: str = "/twilio/voice"
    recording_path: str = "/twilio/voice/recording"
    # Set this URL as the number's "Call status changes" callback in the Twilio console:
    # it is how a call that ends before or without a recording still becomes a message.
    status_path: str = "/twilio/voice/status"
    language: str = "fr-FR"
    # A Twilio <Say> voice (e.g. "Polly.Lea"); empty: Twilio's default for the language.
    say_voice: str | None = None
    greeting: str = ("Bonjour, vous êtes bien au support. Après le bip, laissez votre nom, "
                     "votre société et votre demande, avec la référence de commande ou de "
                     "facture si vous l'avez. Nous vous rappelons au plus vite.")
    greeting_closed: str = ("Bonjour, le support est ouvert du lundi au vendredi de 9 heures 30 "
                            "à 19 heures. Laissez votre message après le bip : il sera traité "
                            "dès l'ouverture.")
    max_length_seconds: int = Field(180, ge=1, le=14_400)
    # Silence (seconds) that ends a recording.
    silence_timeout_seconds: int = Field(5, ge=1, le=60)
    recording_format: str = Field("wav", pattern="^(wav|mp3)$")
    # A WAV of max_length_seconds at 8 kHz/16 bit is ~16 KB a second: 3 min ≈ 2.9 MB.
    recording_max_bytes: int = Field(64 * 1024 * 1024, gt=0)
    business_hours: BusinessHours = Field(default_factory=BusinessHours)


class TwilioConfig(BaseModel):
    enabled: bool = False
    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    # The public URL Twilio calls (as configured in the console): signatures are computed on
    # it, so behind a reverse proxy it differs from the address this server listens on.
    # The request's local path is appended: https://support.example.com/hooks + /twilio/...
    public_base_url: str | None = None
    # Webhooks signed with a SharedKey (X-Twilio-Webhooks-Signature-Settings header, HMAC-SHA256)
    # are checked with this secret; without the header, the auth token signs (HMAC-SHA1).
    webhook_shared_key: SecretStr | None = None
    # Twilio's REST API; tests point it at a local server speaking the same contract.
    api_base_url: str = "https://api.twilio.com"

    whatsapp_path: str = "/twilio/whatsapp"
    # The business's WhatsApp sender (whatsapp:+33...); reconciliation lists messages to it.
    whatsapp_number: str | None = None

    media_max_bytes: int = Field(16 * 1024 * 1024, gt=0)
    # Content types kept in the blob store; "type/*" allows a whole family.
    media_allowed_types: list[str] = Field(default_factory=lambda: [
        "audio/*", "image/*", "video/*", "application/pdf", "application/ogg",
        "text/plain", "text/csv", "text/vcard", "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ])
    media_attempts: int = Field(4, ge=1, le=10)
    media_backoff_seconds: float = Field(0.5, ge=0)
    media_timeout_seconds: float = Field(20.0, gt=0)
    # Twilio waits 15 s for a webhook answer: give up on the broker before that and answer
    # 503, so Twilio retries instead of timing out on us.
    publish_timeout_seconds: float = Field(10.0, gt=0)

    # Periodic reconciliation in the connector process (0: only `--reconcile` runs it).
    reconcile_interval_seconds: float = Field(300.0, ge=0)
    # Listing restarts this long before the checkpoint: Twilio may list a message late.
    reconcile_overlap_seconds: float = Field(600.0, ge=0)
    # With no checkpoint yet, how far back the first run looks.
    reconcile_initial_lookback_hours: float = Field(24.0, gt=0)
    reconcile_page_size: int = Field(100, ge=1, le=1000)

    voice: VoiceConfig = Field(default_factory=VoiceConfig)
