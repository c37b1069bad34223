"""Separate what the customer just wrote from the quoted thread and the signature.

Matching, merging and the spam filter should read the new text only (a reply quoting the
whole case history would otherwise look like every earlier message); the quoted part and
the signature are kept beside it, never dropped. English and French mail clients' markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A line that opens the quoted thread.
_ATTRIBUTION = [
    re.compile(r"^\s*On\b.{0,300}\bwrote\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*Le\b.{0,300}\ba\s+écrit\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*(Original Message|Forwarded message|Message d'origine|"
               r"Message original|Message transféré|Courriel original)\s*-{2,}\s*$",
               re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),
]
# Outlook's header block: "From: ..." / "De : ..." followed by "Sent:" / "Envoyé :" / "Date :".
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|De)\s*:\*?\s*\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(Sent|Envoyé|Date|To|À)\s*:", re.IGNORECASE)
_QUOTED_LINE = re.compile(r"^\s*>")
# A line that opens the signature.
_SIGNATURE = [
    re.compile(r"^-- ?$"),
    re.compile(r"^\s*(Sent from my|Envoyé de mon|Envoyé depuis mon|Get Outlook for|"
               r"Obtenir Outlook pour|Sent from Mail for)\b", re.IGNORECASE),
]


@dataclass(frozen=True)
class ReplyParts:
    new_text: str
    quoted: str | None = None
    signature: str | None = None


def split_reply(text: str) -> ReplyParts:
    """New text, quoted thread, signature. When nothing new is left (a bare forward), the
    whole text stays the new text, so no message ever travels empty by our doing."""
    lines = text.replace("\r\n", "\n").split("\n")
    cut = _quote_start(lines)
    head, quoted = lines[:cut], lines[cut:]
    sig_at = _signature_start(head)
    body, signature = head[:sig_at], head[sig_at:]
    new_text = "\n".join(body).strip()
    if not new_text:
        return ReplyParts(text.strip())
    return ReplyParts(new_text, "\n".join(quoted).strip() or None,
                      "\n".join(signature).strip() or None)


def _quote_start(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        if any(p.match(line) for p in _ATTRIBUTION):
            return i
        # "On Mon, 23 Nov 2026 at 09:12, Jeanne <jeanne@example.fr>" / "wrote:" on two lines.
        if i + 1 < len(lines) and re.match(r"^\s*(On|Le)\b", line) and any(
                p.match(f"{line} {lines[i + 1]}") for p in _ATTRIBUTION[:2]):
            return i
        if _OUTLOOK_FROM.match(line) and any(
                _OUTLOOK_NEXT.match(nxt) for nxt in lines[i + 1:i + 4]):
            return i
        if _QUOTED_LINE.match(line):
            return i
    return len(lines)


def _signature_start(lines: list[str]) -> int:
    # Only the last few lines can be a signature, not half the message.
    for i in range(max(0, len(lines) - 12), len(lines)):
        if any(p.match(lines[i]) for p in _SIGNATURE):
            return i
    return len(lines)
