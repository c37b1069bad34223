"""Settings of the dedup stage (section ``dedup`` of pipeline.yaml)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator

Scorer = Literal["token_set_ratio", "token_sort_ratio", "partial_token_set_ratio", "WRatio",
                 "ratio", "QRatio"]


class ReferencePattern(BaseModel):
    """A kind of business reference and the regular expression that finds it.

    The first capturing group (or the whole match) is the value; values are compared
    upper-cased without spaces, so ``mh 38`` and ``MH38`` are the same order.
    """

    kind: str
    pattern: str
    ignore_case: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return value


# Order matters: earlier kinds claim their text first, so "FAC-2026-0042" is an invoice
# and not also read as order codes.
DEFAULT_REFERENCE_PATTERNS: list[ReferencePattern] = [
    # A page: a URL with a path. A bare domain ("https://www.boulangerie-martin.fr" in every
    # signature) would merge all of a customer's mail; restrict to your app's domain if needed.
    ReferencePattern(kind="url",
                     pattern=r"https?://[^\s/<>\"')\]]+/[^\s<>\"')\]]*[^\s<>\"')\].,;:!?/]"),
    ReferencePattern(kind="invoice",
                     pattern=r"\b(?:facture|invoice|fac|inv)\b\s*(?:n[°o]\.?|no\.?|#|:)?\s*"
                             r"([A-Z]{0,4}[-/]?\d[\d\-/]{3,15}\d)\b"),
    ReferencePattern(kind="invoice", pattern=r"\b((?:FAC|INV)[-/]?\d[\d\-/]{2,15}\d)\b"),
    ReferencePattern(kind="contract",
                     pattern=r"\b(?:contrat|contract)\b\s*(?:n[°o]\.?|no\.?|#|:)?\s*"
                             r"([A-Z]{0,4}[-/]?\d[\d\-/]{2,15}\d)\b"),
    ReferencePattern(kind="contract", pattern=r"\b((?:CTR|CT)[-/]?\d{3,12})\b"),
    # Short codes mixing capitals and digits (MH38, X45Q): upper case only, or "TVA" and
    # "mp3" would be orders; "commande mh38" written in lower case is caught just below.
    ReferencePattern(kind="order",
                     pattern=r"\b((?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{4,8})\b",
                     ignore_case=False),
    ReferencePattern(kind="order",
                     pattern=r"\b(?:commande|order|cde)\b\s*(?:n[°o]\.?|no\.?|#|:)?\s*"
                             r"((?=[a-z0-9]*\d)[a-z0-9]{3,10})\b"),
]


class DedupConfig(BaseModel):
    # Open cases without activity for longer than this are forgotten (aged out).
    open_case_max_age_days: float = Field(30.0, gt=0)
    # A chat / WhatsApp message from the same sender within this time continues its case.
    quiet_period_minutes: float = Field(30.0, ge=0)
    # rapidfuzz.fuzz scorer used to compare a message with each open case's summary.
    # WRatio measured best on our French/English pairs: a follow-up about the same printer
    # scores ~85, an unrelated question from the same customer ~35-45 (docs/dedup-route.md).
    scorer: Scorer = "WRatio"
    threshold: float = Field(75.0, ge=0, le=100)
    # Fewer meaningful words than this (after stop words) is too little to merge on.
    min_fuzzy_words: int = Field(2, ge=1)
    # Per-customer bounds: what keeps the cost per message constant, whatever the total.
    max_open_cases_per_account: int = Field(50, ge=1)
    max_message_ids_per_case: int = Field(500, ge=1)
    summary_chars: int = Field(600, ge=50)
    # Closed cases remembered (per account) so that a "reopened" event can restore them.
    remember_closed_cases: int = Field(20, ge=0)
    reference_patterns: list[ReferencePattern] = Field(
        default_factory=lambda: list(DEFAULT_REFERENCE_PATTERNS))
