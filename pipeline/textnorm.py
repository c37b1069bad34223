"""Text folding for matching: case- and accent-insensitive, punctuation as spaces.

Shared by dedup (fuzzy case comparison) and route (keywords); a pure helper, no stage state.
"""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w]+")
_APOSTROPHE = re.compile(r"[’']")


def fold(text: str) -> str:
    """Lower case, accents removed, apostrophes and punctuation turned into single spaces.

    ``"Où configurer la TVA ?"`` → ``"ou configurer la tva"``.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    bare = _APOSTROPHE.sub(" ", bare)
    return _NON_WORD.sub(" ", bare).replace("_", " ").strip()


def words(text: str) -> list[str]:
    """The folded words of a text."""
    folded = fold(text)
    return folded.split() if folded else []
