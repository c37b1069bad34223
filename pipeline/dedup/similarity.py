"""Is a message about the same thing as a case? Similarity on *informative* words.

A word is informative in proportion to how rare it is in support messages: its inverse
document frequency in a reference sample (``vocabulary.DOCUMENT_FREQUENCY``; a word not
in the sample is as rare as can be). Words are compared by a crude stem (folded, plural
``s`` dropped, first six letters) so that "imprimante", "imprimantes" and the typo
"imprimente" are one word. The sender's own name and company, and the signature block of
a mail, are never evidence: they are in every message the customer writes.

Pure functions; the score is 0–100 like rapidfuzz's, so thresholds read the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pipeline.dedup.vocabulary import DOCUMENT_FREQUENCY, GENERAL_ZIPF, SAMPLE_MESSAGES
from pipeline.envelope import Channel, Envelope
from pipeline.textnorm import fold, words

# Words that say nothing about the subject of a case (French and English support mail).
_STOP_WORD_LIST = """
a au aux avec ce ces cette dans de des du elle en et eux il ils je la le les leur lui ma
mais me meme mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur
ta te tes toi ton tu un une vos votre vous c d j l m n s t y est sont ai as avons avez ont
suis etes etait ete etre avoir fait faire peut plus tres bien merci bonjour bonsoir cordialement
salut svp stp madame monsieur aussi encore deja car donc alors comme tout tous toute toutes
the an and or of to in on at for with is are was were be been it its this that these those
i you we they he she my your our their me us them do does did have has had not no can could
would should will just please thanks thank hello hi dear regards best kind hey
only one ones some all any also there here what when which who then than so too very
"""
STOP_WORDS = frozenset(_STOP_WORD_LIST.split())
STEM_LENGTH = 6

# Status and politeness words every kind of request uses: they say how things are going,
# never what about ("ça ne marche toujours pas", "c'est reparti, merci"). Stems.
_GENERIC_STEM_LIST = """
toujou marche foncti remarc repart proble souci bug nouvel relanc relance aide aider urgent
vite rapide possib besoin retour reponse repond merci beauco quand meme ok oui non euh bon
bonne bien super parfai trouve regard essaye still working work again sorry thank great fine
news update any help issue problem photo captur vous envoie envoye rappel rappele appel
appele messag lien recu fait quoi voila ca cela ceci rien tout depuis matin soir hier aujour
demain jour semain fois encore deja plus moins
revenu recommence seul nouveau again back
"""

# Opens a new subject inside a conversation ("et autre chose", "au fait", "btw …").
NEW_SUBJECT_MARKERS = re.compile(
    r"\b(autre chose|autre question|une autre|au passage|au fait|sinon|par ailleurs|"
    r"egalement|et aussi|ah et|by the way|btw|also|another (thing|question)|"
    r"one more thing|separately)\b")
# A message that opens with "et" / "and" and a new thing ("et la balance …", "and the
# printer …") adds a subject; "et qu'elle apparaisse …", "et puis …" end a sentence.
NEW_THING_OPENING = re.compile(
    r"^(et|and|oh and|ah et)\s+(la|le|les|l|mon|ma|mes|notre|nos|aussi|the|our|my)\b")
# Says the message goes on with something already reported ("toujours", "still", "re …",
# "des nouvelles ?", "any update"): with a shared informative word, it is a follow-up.
CONTINUATION_MARKERS = re.compile(
    r"(^re\b|\b(toujours|encore|again|still|relance|relancer|des nouvelles|any update|"
    r"any news|ca recommence|recommence|de nouveau|a nouveau|same thing|pareil)\b)")
# Says how a problem is going ("ça ne marche toujours pas", "c'est reparti", "still broken"):
# about a reported problem, not about a question the customer asked in between.
STATUS_MARKERS = re.compile(
    r"\b(marche|marchent|fonctionne|fonctionnent|reparti|repart|remarche|recommence|revenu|"
    r"plante|bloque|bloquee|working|works|broken|fixed|still|toujours)\b")
# Says a problem is solved or an answer found ("ça remarche", "c'est réparé", "j'ai trouvé",
# "merci pour l'explication", "found it", "fixed"): the customer closes the loop on one of
# their requests, whatever words of it they repeat.
RESOLVED_MARKERS = re.compile(
    r"(^trouve\b|\b(remarche|remarchent|refonctionne|refonctionnent|repare|reparee|reparees|"
    r"resolu|resolue|est regle|est reglee|sont regles|c est bon|ca passe|c est revenu|"
    r"est revenu|est revenue|sont revenu|sont revenues|reparti|ca va mieux|va mieux|"
    r"ca va maintenant|ca marche|ca a marche|c est beau|il fallait|c etait (le|la|les|l|un|une|"
    r"juste|bien)|j ai pu|on a pu|j ai reussi|on a reussi|j ai trouve|on a trouve|"
    r"trouve le|trouve la|trouve les|vu dans|merci pour (l explication|le retour|votre aide|"
    r"l aide|la reponse|le profil|le coup de main|le lien|l info)|found|fixed|solved|sorted|"
    r"works now|working now|works again|working again|all good|done it|did it|sort itself|"
    r"sorted itself|fine all|all fine)\b)")
# ... unless it goes on to something else ("c'est bon pour la TVA, par contre l'export …"),
# or says it is not solved ("ça ne marche pas", "still not working").
RESOLVED_BUT = re.compile(r"\b(par contre|en revanche|however|but now|mais maintenant)\b")
NOT_RESOLVED = re.compile(
    r"\b(ne|n|pas|not|no|still|toujours|rien|nothing|can t|cannot|won t|doesn t|didn t|"
    r"isn t|aren t)\b")
# Of those, the ones about a problem (it works again), and the ones about an answer found
# (a question the customer had asked).
WORKS_AGAIN = re.compile(
    r"\b(remarche|remarchent|refonctionne|refonctionnent|repare|reparee|reparees|"
    r"ca passe|c est revenu|est revenu|est revenue|sont revenu|sont revenues|reparti|"
    r"ca va mieux|va mieux|ca va maintenant|ca a marche|fixed|works now|working now|"
    r"works again|working again|sort itself|sorted itself|fine all|all fine)\b")
ANSWER_FOUND = re.compile(
    r"(^trouve\b|\b(j ai trouve|on a trouve|trouve le|trouve la|trouve les|vu dans|found|"
    r"merci pour (l explication|la reponse|l info)|done it|did it|j ai pu|on a pu)\b)")
# Points at a colleague's message ("il vous a écrit", "following Fiona's email", "suite aux
# messages de Léa", "je travaille avec Réjean"): with the colleague's first name, their case.
COLLEAGUE_REFERENCE = re.compile(
    r"\b(vous a ecrit|vous a appele|vous a telephone|vous a envoye|vous a laisse|a ecrit|"
    r"a appele|a telephone|suite a|suite aux|collegue|colleague|following|travaille avec|"
    r"works with|work with|wrote|called|phoned|emailed|messaged|s email|s message)\b")
# Points at the sender's own earlier message on another channel ("j'ai téléphoné ce matin",
# "je vous ai envoyé un mail", "I called earlier").
SELF_REFERENCE = re.compile(
    r"\b(j ai (telephone|appele|ecrit|envoye|laisse un message)|je vous ai (telephone|appele|"
    r"ecrit|envoye|laisse)|je vous avais (telephone|appele|ecrit|envoye)|mon (message|mail|"
    r"courriel|appel) de|i (called|phoned|emailed|wrote|messaged|left a message)|my (email|"
    r"message|call|voicemail) (this|earlier|yesterday|from))\b")
# Asking or requesting without a question mark, anywhere in the message ("et je voudrais
# savoir si …", "et une idée : ce serait top de …", "I'd like to know …").
REQUEST_PHRASES = re.compile(
    r"\b(je voudrais savoir|j aimerais savoir|je me demandais|une idee|ce serait (bien|top|"
    r"pratique|genial|super)|ca serait (bien|top|pratique|genial|super)|il faudrait|"
    r"i d like to know|i was wondering|it would be (nice|great|good)|would be (nice|great))\b")
# A question or a request: a new one needs its own evidence to join a case.
QUESTION_OPENINGS = re.compile(
    r"^(et )?(comment|pourquoi|combien|quand|quel|quelle|est ce|c est quoi|c est ou|"
    r"c est possible|serait il|serait ce|ce serait|pourriez|pourrait|vous pourriez|"
    r"peut on|on peut|je peux|puis je|how|what|where|why|can|could|would|is there|"
    r"any chance|do you)\b")

# A line that opens a mail's signature block: everything from it on is the signature.
_SIGN_OFF = re.compile(
    r"^\s*(--\s*|cordialement\b.*|bien (a|à) vous\b.*|bien cordialement\b.*|"
    r"meilleures salutations\b.*|bonne journ[ée]e\b.*|belle journ[ée]e\b.*|"
    r"best( regards)?\b.*|kind regards\b.*|regards\b.*|cheers\b.*|many thanks\b.*|"
    r"thanks,?\s*|merci,?\s*|envoy[ée] de mon .*|sent from my .*)$",
    re.IGNORECASE)


# Inflection endings dropped before cutting to STEM_LENGTH, longest first, so that the
# forms customers write of one word meet: "plantage" / "plante", "doubling" / "double",
# "scanning" / "scanner", "bloquée" / "bloque". Only when at least four letters remain.
_ENDINGS = ("ements", "ement", "ing", "age", "ees", "ent", "ons", "ed", "er", "ez", "ee",
            "es", "e")
# Words that say the same thing in different words or languages (one stem each).
SYNONYMS = {
    "twic": "doubl", "doublon": "doubl", "duplic": "doubl", "duplicat": "doubl",
    "plant": "crash", "crash": "crash", "bug": "bug",
    "scan": "scann", "barcod": "scann",
    "printer": "imprim", "print": "imprim", "prints": "imprim",
    "invoic": "factur", "fac": "factur",
    "password": "passwo", "passe": "passe",
    "refund": "rembou",
    "kick": "deconn", "deconnect": "deconn", "logout": "deconn",
}


def stem(word: str) -> str:
    """The comparable form of a folded word."""
    if len(word) > 4 and word.endswith(("s", "x")) and not word[-2].isdigit():
        word = word[:-1]
    if not any(ch.isdigit() for ch in word):
        for ending in _ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= 4:
                word = word[:-len(ending)]
                break
    for length in (len(word), STEM_LENGTH):
        if (same := SYNONYMS.get(word[:length])) is not None:
            return same
    return word[:STEM_LENGTH]


GENERIC_STEMS = frozenset(stem(w) for w in _GENERIC_STEM_LIST.split())


def without_signature(text: str, own_names: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """A mail's text up to its sign-off: a line such as ``Cordialement``, ``--``,
    ``Best,``, or a line that is only the sender's own name or company."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if i == 0:
            continue
        if _SIGN_OFF.match(line):
            return "\n".join(lines[:i])
        line_words = words(line)
        if line_words and own_names and sum(w in own_names for w in line_words) * 2 >= len(
                line_words):
            return "\n".join(lines[:i])
    return text


def _own_names(envelope: Envelope) -> set[str]:
    identity = envelope.identity
    names = [envelope.sender.display_name or ""]
    if identity is not None:
        names += [identity.employee_name or "", identity.account_name or ""]
    if envelope.sender.app_identity is not None:
        names.append(envelope.sender.app_identity.name or "")
    return {w for name in names for w in words(name)}


def subject_words(envelope: Envelope) -> list[str]:
    """The meaningful folded words of what the message says (subject, text, transcripts)."""
    own = _own_names(envelope)
    text = envelope.text
    if envelope.channel is Channel.EMAIL:
        text = without_signature(text, own)
    subject = re.sub(r"^\s*((re|tr|fwd?|aw)\s*:\s*)+", "", envelope.subject or "",
                     flags=re.IGNORECASE)
    parts = [subject, text, *(t.text for t in envelope.transcripts)]
    found = words("\n".join(p for p in parts if p))
    # Bare numbers (phone numbers, amounts, years) are not a subject; references that are
    # numbers (invoices, orders) are compared as references.
    return [w for w in found if w not in STOP_WORDS and w not in own and len(w) > 2
            and not w.isdigit()]


def subject_line_words(subject: str) -> list[str]:
    """The meaningful folded words of a mail subject, without its "Re:" / "Fwd:"."""
    bare = re.sub(r"^\s*((re|tr|fwd?|aw)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    return [w for w in words(bare) if w not in STOP_WORDS and len(w) > 2 and not w.isdigit()]


def message_text(envelope: Envelope) -> str:
    """What the customer wrote or said, folded (subject, text, transcripts)."""
    return fold(" ".join(p for p in [envelope.subject or "", envelope.text,
                                     *(t.text for t in envelope.transcripts)] if p))


def is_question(envelope: Envelope) -> bool:
    """A question mark or a question's opening ("comment …", "how do I …")."""
    raw = envelope.text or " ".join(t.text for t in envelope.transcripts)
    return bool(("?" in raw and raw.strip(" ?")) or QUESTION_OPENINGS.match(
        fold(" ".join(p for p in [envelope.text, *(t.text for t in envelope.transcripts)]
                      if p))))


def asks_or_changes_subject(envelope: Envelope) -> str | None:
    """``change of subject ('btw')`` or ``a question`` when the message says it brings
    something new; then being in the same conversation is no evidence of being about the
    same thing, and the message needs the full similarity bar to join a case."""
    text = fold(" ".join(p for p in [envelope.text, *(t.text for t in envelope.transcripts)]
                         if p))
    if (marker := NEW_SUBJECT_MARKERS.search(text) or NEW_THING_OPENING.match(text)) is not None:
        return f"change of subject ({marker.group(0)!r})"
    raw = envelope.text or " ".join(t.text for t in envelope.transcripts)
    if ("?" in raw and raw.strip(" ?")) or QUESTION_OPENINGS.match(text):
        return "a question"
    if (phrase := REQUEST_PHRASES.search(text)) is not None:
        return f"a request ({phrase.group(0)!r})"
    return None


def opens_new_subject(envelope: Envelope, message_stems: set[str], new_subject_weight: float
                      ) -> str | None:
    """Why a message in a conversation starts a request of its own, or ``None``.

    A question, a change-of-subject marker, or a description long enough to be a request
    by itself; a short statement ("on a déjà débranché rebranché", "sur le PC ça marche")
    continues what the customer was saying.
    """
    if (why := asks_or_changes_subject(envelope)) is not None:
        return why
    said = content_weight(message_stems)
    if said >= new_subject_weight:
        return f"a request of its own (informative weight {said:.1f} ≥ {new_subject_weight:g})"
    return None


# Everyday-language frequency (Zipf) at which a word stops being informative at all, and
# below which it is fully so: "arrive", "code", "card", "order" are common everywhere.
_ZIPF_UNINFORMATIVE = 6.5
_ZIPF_INFORMATIVE = 4.5


@lru_cache(maxsize=65536)
def weight(stemmed: str) -> float:
    """How informative a stem is, 0–1: rare in support messages of this product (IDF over
    the sample) *and* in everyday French or English (``GENERAL_ZIPF``); a word common in
    either background says little about what a case is about."""
    if stemmed in GENERIC_STEMS:
        return 0.05
    df = DOCUMENT_FREQUENCY.get(stemmed, 0)
    domain = math.log((SAMPLE_MESSAGES + 1) / (df + 1)) / math.log(SAMPLE_MESSAGES + 1)
    zipf = GENERAL_ZIPF.get(stemmed, 0.0)
    everyday = min(1.0, max(0.0, (_ZIPF_UNINFORMATIVE - zipf)
                            / (_ZIPF_UNINFORMATIVE - _ZIPF_INFORMATIVE)))
    return min(domain, everyday)


def stems(folded_words: Iterable[str]) -> set[str]:
    return {stem(w) for w in folded_words if w not in STOP_WORDS}


def content_weight(message_stems: set[str]) -> float:
    """How much a message says: the sum of its stems' weights."""
    return sum(weight(s) for s in message_stems)


@dataclass(frozen=True)
class Similarity:
    """How much of what a message says a case already said."""

    score: float  # 0–100: the weighted share of the message's content found in the case
    shared_weight: float  # the informative content in common (≈ number of rare words)
    shared: tuple[str, ...]  # the shared stems, most informative first

    def distinctive_weight(self, at_least: float) -> float:
        """The shared content carried by distinctive stems (weight ≥ ``at_least``) alone."""
        return sum(w for s in self.shared if (w := weight(s)) >= at_least)

    def describe(self, spelled: dict[str, str] | None = None) -> str:
        """``72% of the message's informative words, imprimante(0.64) etiquettes(0.80)``."""
        spelled = spelled or {}
        words_ = " ".join(f"{spelled.get(s, s)}({weight(s):.2f})" for s in self.shared[:8])
        return f"{self.score:.0f}% of the message's informative words, {words_}"


def similarity(message_stems: set[str], case_stems: set[str]) -> Similarity:
    """Weighted overlap of a message with a case's representative text.

    The share is taken against the smaller of the two contents (a short follow-up is
    similar when its informative words are the case's), so the case's length does not
    buy a merge and a long message is not penalised for saying more than the case.
    """
    shared = message_stems & case_stems
    if not shared:
        return Similarity(0.0, 0.0, ())
    shared_weight = sum(weight(s) for s in shared)
    smaller = min(content_weight(message_stems), content_weight(case_stems))
    score = 100.0 * shared_weight / smaller if smaller else 0.0
    ranked = tuple(sorted(shared, key=lambda s: (-weight(s), s)))
    return Similarity(round(min(score, 100.0), 1), round(shared_weight, 2), ranked)

