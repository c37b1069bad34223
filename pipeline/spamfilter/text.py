"""What a person would actually read in a message: quotes, signatures and greetings removed."""

from __future__ import annotations

import re

_QUOTE_HEADER = re.compile(
    r"^\s*((le|on)\b.{0,200}\b(a écrit|wrote)\s*:?"
    r"|-{2,}\s*(original message|message d'origine|forwarded message|message transféré)"
    r"\s*-{0,}|_{5,})\s*$", re.I)
_FROM_LINE = re.compile(r"^\s*(de|from)\s*:\s*\S", re.I)
_SENT_LINE = re.compile(r"^\s*(envoyé|sent|date|à|to|objet|subject)\s*:", re.I)
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(envoyé de mon|envoyé depuis|sent from my|get outlook for|téléchargez outlook)", re.I)
_CLOSING = re.compile(
    r"^\s*(cordialement|bien cordialement|bien à vous|salutations|sincères salutations|"
    r"best regards|kind regards|regards|best|cheers|sincerely|cdlt|cdt)\b[\s,.!]*$", re.I)
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fw|fwd|tr|réf|aw)\s*:\s*)+", re.I)
_NO_SUBJECT = {"(sans objet)", "(no subject)", "sans objet", "no subject"}

# Courtesy words that carry no request on their own ("Bonjour, merci !").
GREETINGS = frozenset(str.split("""
bonjour bonsoir salut coucou hello hi hey hiya dear cher chère chers madame monsieur mesdames
messieurs mme mr mrs ms merci thanks thank thx you vous beaucoup d'avance davance avance
cordialement regards best kind bonne belle journée soirée day evening à a bientôt bien
l'équipe équipe team support le la les the good morning afternoon re
"""))
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)


def strip_quotes_and_signature(text: str) -> str:
    """The new part of a message: before the quoted reply, the signature, the closing."""
    kept: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() in ("--", "-- ", "—"):
            break
        if _QUOTE_HEADER.match(line) or _CLOSING.match(line):
            break
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _FROM_LINE.match(line) and _SENT_LINE.match(nxt):
            break
        if line.lstrip().startswith(">") or _MOBILE_SIGNATURE.match(line):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def clean_subject(subject: str | None) -> str:
    """A subject without ``Re:``/``Fwd:``/``TR:`` prefixes; empty if it says nothing."""
    if not subject:
        return ""
    cleaned = _SUBJECT_PREFIX.sub("", subject).strip()
    return "" if cleaned.lower() in _NO_SUBJECT else cleaned


def without_greetings(text: str) -> str:
    """The words that are not courtesy: empty for "Bonjour, merci !" or "Hi team, thanks"."""
    words = [w for w in _WORD.findall(text) if w.lower() not in GREETINGS]
    return " ".join(words)
