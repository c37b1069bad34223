"""Is a text gibberish (keyboard mashing, random characters, mojibake)? Pure heuristics.

No model: each word is checked for what French and English words never do (no vowel in a
long word, five consonants in a row, a walk along one keyboard row, a short pattern
repeated, long letter/digit soup); the text is gibberish when most of its letters sit in
such words. Mojibake (UTF-8 read as Latin-1/CP1252) is recognised by repairing it.
References (order codes like MH38, invoice numbers), URLs, e-mail addresses and common
SMS abbreviations are never held against a message. Tuned on tests/data/gibberish.yaml.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

VOWELS = set("aeiouyàâäéèêëîïôöùûüÿœæ")
_URL = re.compile(r"(https?://|www\.)\S+|\S+@\S+\.\S+", re.I)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_MOJIBAKE = re.compile(r"Ã[\u0080-\u00bf]|Ã[ -¿]|â€|Â[\u00a0-\u00bf]|Ð[\u0080-\u00bf]|ï¿½|\ufffd")
_REPEAT = re.compile(r"(.)\1{2,}")
_SQUEEZE = re.compile(r"(.)\1+")

# Rows of QWERTY and AZERTY keyboards: mashing walks along them.
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "azertyuiop", "qsdfghjklm", "wxcvbn")
_ADJACENT = {row[i:i + 2] for row in _ROWS for i in range(len(row) - 1)}
_ADJACENT |= {pair[::-1] for pair in _ADJACENT}

# Real words and abbreviations the rules below would wrongly flag.
KNOWN_WORDS = frozenset(str.split("""
were tree trees rewrite ere asdf qwerty azerty sdk http https html www mdr ptdr lol jpp pdf
rgpd cgv cgu sncf ttc ht tva rib siret siren kbis bjr slt cdt cdlt svp stp mrc tkt pb rdv
dsl bcp mms sms ssl tls dns smtp imap xml json csv xlsx docx pptx jpg jpeg png gif mp3 mp4
strengths schtroumpf rhythm rhythms crwth cwm ok okk pfff pff hmm hmmm grr brr zzz shh psst
qq qqch qqn qqs pq pk dcp dmd jtm nvm idk smh lmk pls wsh frr ptdr mdr sdf
"""))


@dataclass(frozen=True)
class GibberishScore:
    """Share of the text's letters in implausible words, and why (for the explanation)."""

    ratio: float
    letters: int
    bad_words: tuple[str, ...]
    mojibake: bool = False

    def is_gibberish(self, threshold: float, min_letters: int) -> bool:
        return self.mojibake or (self.letters >= min_letters and self.ratio >= threshold)


def looks_like_mojibake(text: str) -> bool:
    """UTF-8 bytes shown as Latin-1/CP1252 (``Ã©``, ``â€™``) or replacement characters."""
    markers = len(_MOJIBAKE.findall(text))
    if markers >= 2 or text.count("\ufffd") >= 2:
        return True
    if markers == 1:
        try:
            return text.encode("cp1252").decode("utf-8") != text
        except (UnicodeEncodeError, UnicodeDecodeError):
            return False
    return False


def _repeated_pattern(word: str) -> bool:
    """``qsdqsdqsd``, ``azeaze``, ``hahaha``-like: a 1-4 letter unit repeated."""
    for size in range(1, 5):
        unit = word[:size]
        if len(word) >= max(2 * size + 1, 4) and (unit * (len(word) // size + 1)).startswith(word):
            return True
    return False


# Pure in the token, and customers write the same words again and again: a cache turns
# the per-word checks into a dict lookup for most of a message (the spam filter's largest
# cost per message, bench/stage_costs.py).
@functools.lru_cache(maxsize=65_536)
def word_problem(token: str) -> str | None:
    """Why a single token cannot be a French or English word, or None if it can."""
    word = token.lower()
    has_digit = any(c.isdigit() for c in word)
    if has_digit:
        # Order codes and invoice numbers are short; long letter/digit soup is random.
        switches = sum(1 for a, b in zip(word, word[1:], strict=False)
                       if a.isdigit() != b.isdigit())
        return "random characters" if len(word) >= 9 and switches >= 5 else None
    if len(word) < 3 or word in KNOWN_WORDS or _SQUEEZE.sub(r"\1", word) in KNOWN_WORDS:
        return None  # "ptdrrr", "mdrrrr": known words with an expressive repeat
    if token.isupper() and len(token) <= 6:
        return None  # an acronym: CCRP, URSSAF, SIRET
    if len(set(word)) == 1:
        return "one letter repeated"
    collapsed = _REPEAT.sub(r"\1\1", word)  # "merciiii" → "mercii": expressive, not random
    if len(collapsed) >= 6 and _repeated_pattern(collapsed) and not _is_laugh(collapsed):
        return "repeated pattern"
    if len(collapsed) >= 5 and not (set(collapsed) & VOWELS):
        return "no vowel"
    run = longest_consonant_run(collapsed)
    if run >= 5:
        return "consonant cluster"
    pairs = [collapsed[i:i + 2] for i in range(len(collapsed) - 1)]
    if len(collapsed) >= 4 and pairs:
        adjacent = sum(1 for p in pairs if p in _ADJACENT) / len(pairs)
        if adjacent >= 0.75 or (adjacent >= 0.6 and len(collapsed) >= 7):
            return "keyboard row"
    if len(collapsed) >= 4 and run >= 4 and not (set(collapsed[:6]) & VOWELS):
        return "no vowel"
    return None


def _is_laugh(word: str) -> bool:
    return bool(re.fullmatch(r"(ha|he|hi|ah|xd|lo|mdr)+h?", word))


def longest_consonant_run(word: str) -> int:
    best = run = 0
    for ch in word:
        run = 0 if ch in VOWELS or not ch.isalpha() else run + 1
        best = max(best, run)
    return best


def score(text: str) -> GibberishScore:
    """How much of ``text`` is made of implausible words (URLs and e-mails excluded)."""
    if looks_like_mojibake(text):
        return GibberishScore(1.0, len(text), (), mojibake=True)
    cleaned = _URL.sub(" ", text)
    letters = bad = 0
    bad_words: list[str] = []
    for token in _TOKEN.findall(cleaned):
        weight = sum(1 for c in token if c.isalpha())
        if weight == 0:
            continue
        letters += weight
        problem = word_problem(token)
        if problem:
            bad += weight
            bad_words.append(f"{token} ({problem})")
    ratio = bad / letters if letters else 0.0
    return GibberishScore(ratio, letters, tuple(bad_words[:5]))
