"""Which category a customer's message is in, from the leads' example messages and keywords.

Each category of ``routing.yaml`` has example messages written by the support leads and
keywords; the file may also name a file of past messages the leads labelled
(``examples_file``). Two classifiers, chosen by ``classifier`` in the rules file:

- ``nearest``: a message is compared with every example by character n-gram TF-IDF
  (robust to French inflection, typos and missing accents); a category's similarity is the
  mean of its three nearest examples, and each of its keywords found in the message adds
  ``keyword_weight``; the confidence is the best category's share of a softmax.
- ``linear``: a logistic regression (scikit-learn) over character and word n-grams of the
  examples and past messages, with the keywords found as features of their category; the
  confidence is its probability. Learnt from every labelled message rather than from the
  three nearest, it weighs the words that tell categories apart ("rembours", "facture",
  "mot de passe") above those every message has ("bonjour", "caisse").

Below ``min_confidence`` the message goes to the fallback category (``default_category``),
and the reason says so. Either way the guess names the nearest examples and the keywords
that fired, for ``pipeline rules test``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from rapidfuzz import fuzz, process

from pipeline.envelope import Envelope
from pipeline.textnorm import fold

# scikit-learn and scipy take ~2.3 s to import here: they are imported where a model is
# built, so that commands and connectors that never classify start without them.
if TYPE_CHECKING:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

NEAREST_PER_CATEGORY = 3
# Softmax temperature on the combined scores (similarities are cosines, 0-1).
TEMPERATURE = 0.05
# Keywords counted per category: a third one found adds no more evidence.
MAX_KEYWORDS = 2
# Words shorter than this must be spelt right: "tva" with one typo is another word.
MIN_FUZZY_WORD = 5


@dataclass(frozen=True)
class LinearSettings:
    """How the linear classifier learns. Chosen by cross-validation on the tuning split
    (bench/decisions.py --split cv, docs/benchmarks.md): C from 1 to 300, keyword
    features 0-2, with and without keywords as messages, balanced classes or not, with and
    without an intercept."""

    # Inverse regularisation: the labelled messages are few and clean, little smoothing.
    c: float = 100.0
    # Value of one keyword found, as a feature of its category. 0: keyword features made
    # it worse once past messages were there (the messages show which words matter).
    keyword_value: float = 0.0
    # Keywords also learnt as (very short) messages of their category: a category a lead
    # defined by keywords alone can still be chosen.
    keywords_as_examples: bool = True
    # Categories weigh alike however many messages they have (bug has the most).
    class_weight: str | None = "balanced"
    # No intercept: a message with no known word or word piece ("ok", "??") has no
    # category's evidence, so every category is equally likely and it falls back.
    intercept: bool = False


LINEAR = LinearSettings()

# (category, its examples, its keywords) for every category: hashable, the models are
# cached by it.
CategoryKey = tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]


@dataclass(frozen=True)
class MessageText:
    """The folded text of a message, as words and as one string."""

    raw: str
    folded: str
    tokens: tuple[str, ...]

    @classmethod
    def of_text(cls, raw: str) -> MessageText:
        folded = fold(raw)
        return cls(raw, folded, tuple(folded.split()))

    @classmethod
    def of(cls, envelope: Envelope) -> MessageText:
        """Subject, text and transcripts of a message."""
        return cls.of_text(envelope.full_text())


@lru_cache(maxsize=4096)
def _folded_keyword(keyword: str) -> str:
    return fold(keyword.rstrip("*")) + ("*" if keyword.endswith("*") else "")


def keyword_hit(keyword: str, text: MessageText, tolerance: float) -> str | None:
    """The words of ``text`` that match ``keyword`` (accent/case-insensitive, typo-tolerant)."""
    wanted = _folded_keyword(keyword)
    if not wanted or wanted == "*":
        return None
    if wanted.endswith("*"):
        stem = wanted[:-1]
        return next((t for t in text.tokens if t.startswith(stem)), None)
    if " " in wanted:
        if re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", text.folded):
            return wanted
        if len(wanted) >= 8:
            found = fuzz.partial_ratio_alignment(wanted, text.folded, score_cutoff=tolerance)
            if found is not None:
                return text.folded[found.dest_start:found.dest_end].strip()
        return None
    if wanted in text.tokens:
        return wanted
    if len(wanted) < MIN_FUZZY_WORD:
        return None
    best = process.extractOne(wanted, text.tokens, scorer=fuzz.ratio, score_cutoff=tolerance)
    return best[0] if best else None


def keyword_hits(keywords: tuple[str, ...] | list[str], text: MessageText,
                 tolerance: float) -> list[str]:
    """The keywords found in ``text``, each as written (and as spelt when it differs)."""
    found = []
    for keyword in keywords:
        hit = keyword_hit(keyword, text, tolerance)
        if hit is not None:
            found.append(keyword if fold(keyword) == hit else f"{keyword} (as '{hit}')")
    return found


@dataclass(frozen=True)
class Nearest:
    example: str
    category: str
    similarity: float


@dataclass(frozen=True)
class CategoryGuess:
    """The category, how sure, and why: nearest examples and keywords that fired."""

    category: str
    confidence: float
    fallback: bool
    nearest: tuple[Nearest, ...] = ()
    keywords: tuple[str, ...] = ()
    best: str | None = None  # the best category even when it fell back
    scores: dict[str, float] = field(default_factory=dict)

    def reason(self, min_confidence: float) -> str:
        near = "; ".join(f"«{n.example[:60]}» ({n.category} {n.similarity:.2f})"
                         for n in self.nearest)
        parts = []
        if self.fallback:
            parts.append(f"fallback: best {self.best} at confidence {self.confidence:.2f} "
                         f"< {min_confidence:g}")
        else:
            parts.append(f"confidence {self.confidence:.2f}")
        if self.keywords:
            parts.append("keywords: " + ", ".join(self.keywords))
        if near:
            parts.append("nearest: " + near)
        return "; ".join(parts)


class ExampleModel:
    """The character n-gram TF-IDF space of the labelled messages of one rules file."""

    def __init__(self, texts: list[str], labels: list[str], names: list[str]) -> None:
        self.texts, self.labels, self.names = texts, labels, names
        self.vectorizer: TfidfVectorizer | None = None
        if self.texts:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5),
                                              preprocessor=fold, sublinear_tf=True,
                                              min_df=1)
            self.matrix = self.vectorizer.fit_transform(self.texts)

    def similarities(self, text: str) -> np.ndarray:
        if self.vectorizer is None:
            return np.zeros(0)
        vector = self.vectorizer.transform([text])
        return (self.matrix @ vector.T).toarray().ravel()  # type: ignore[no-any-return]

    def nearest(self, sims: np.ndarray, n: int = 3) -> tuple[Nearest, ...]:
        order = [int(i) for i in np.argsort(-sims)[:n]] if len(sims) else []
        return tuple(Nearest(self.texts[i], self.labels[i], round(float(sims[i]), 2))
                     for i in order if sims[i] > 0)


def _labelled(categories: CategoryKey, past: tuple[tuple[str, str], ...]
              ) -> tuple[list[str], list[str], list[str]]:
    texts = [t for _, examples, _ in categories for t in examples]
    labels = [name for name, examples, _ in categories for _ in examples]
    names = [name for name, _, _ in categories]
    for category, text in past:
        texts.append(text)
        labels.append(category)
    return texts, labels, names


@lru_cache(maxsize=8)
def example_model(categories: CategoryKey, past: tuple[tuple[str, str], ...] = ()
                  ) -> ExampleModel:
    """Cached by content: a reloaded file with the same examples reuses its model."""
    return ExampleModel(*_labelled(categories, past))


class LinearModel:
    """Logistic regression over the labelled messages: character n-grams (inflections,
    typos), word unigrams and bigrams ("mot de passe", "how do"), and per category the
    number of its keywords found (at most two), so that keywords weigh as the labelled
    messages show they should."""

    def __init__(self, categories: CategoryKey, past: tuple[tuple[str, str], ...],
                 tolerance: float, settings: LinearSettings) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        texts, labels, names = _labelled(categories, past)
        if settings.keywords_as_examples:
            # A keyword is a (very short) labelled message of its category: a category a
            # lead defined by keywords alone is still one the model can choose.
            for name, _, kws in categories:
                texts += [kw.rstrip("*") for kw in kws]
                labels += [name] * len(kws)
        self.names = names
        self.keywords = {name: kws for name, _, kws in categories}
        self.tolerance, self.keyword_value = tolerance, settings.keyword_value
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), preprocessor=fold,
                                     sublinear_tf=True)
        self.words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), preprocessor=fold,
                                     sublinear_tf=True, token_pattern=r"(?u)\b\w\w+\b")
        self.model: LogisticRegression | None = None
        self.only: str | None = labels[0] if len(set(labels)) == 1 else None
        if len(set(labels)) < 2:
            return
        from scipy import sparse

        features = sparse.hstack([self.chars.fit_transform(texts),
                                  self.words.fit_transform(texts),
                                  self._keyword_features(texts)]).tocsr()
        self.model = LogisticRegression(C=settings.c, max_iter=5000,
                                        class_weight=settings.class_weight,
                                        fit_intercept=settings.intercept)
        self.model.fit(features, labels)

    def _keyword_features(self, texts: list[str]) -> sparse.csr_matrix:
        from scipy import sparse

        if not self.keyword_value:
            return sparse.csr_matrix((len(texts), len(self.names)))
        rows = [[self.keyword_value * min(2, len(keyword_hits(
            self.keywords[n], MessageText.of_text(t), self.tolerance))) for n in self.names]
            for t in texts]
        return sparse.csr_matrix(np.array(rows, dtype=float).reshape(len(texts),
                                                                     len(self.names)))

    def probabilities(self, text: str) -> dict[str, float]:
        if self.model is None:
            return {self.only: 1.0} if self.only else {}
        from scipy import sparse

        features = sparse.hstack([self.chars.transform([text]), self.words.transform([text]),
                                  self._keyword_features([text])]).tocsr()
        proba = self.model.predict_proba(features)[0]
        return {str(c): float(p) for c, p in zip(self.model.classes_, proba, strict=True)}


@lru_cache(maxsize=8)
def linear_model(categories: CategoryKey, past: tuple[tuple[str, str], ...],
                 tolerance: float, settings: LinearSettings = LINEAR) -> LinearModel:
    """Fitted once per content of the rules and past messages (a reload with the same
    examples reuses it)."""
    return LinearModel(categories, past, tolerance, settings)


def guess(text: MessageText, categories: CategoryKey, *, tolerance: float,
          keyword_weight: float, min_confidence: float, fallback: str,
          past: tuple[tuple[str, str], ...] = (), classifier: str = "nearest",
          keyword_odds: float = 1.0, exclude: int | None = None) -> CategoryGuess:
    """The category of ``text`` among ``categories``.

    ``keyword_odds`` (``linear``): each keyword found (up to two per category) multiplies
    its category's odds by this.

    ``exclude``: index of a YAML example to leave out of the nearest examples (``rules
    check`` classifying the examples themselves, with ``nearest``).
    """
    hits = {name: keyword_hits(kws, text, tolerance) for name, _, kws in categories}
    model = example_model(categories, past)
    sims = model.similarities(text.raw)
    if exclude is not None and len(sims):
        sims[exclude] = -1.0
    if classifier == "linear":
        scores = linear_model(categories, past, tolerance, LINEAR).probabilities(text.raw)
        if not scores:
            return CategoryGuess(fallback, 0.0, True, best=None, scores=scores)
        scores = with_keyword_odds(scores, hits, keyword_odds)
        best = max(scores, key=lambda n: scores[n])
        confidence = scores[best]
    else:
        scores = _nearest_scores(model, sims, hits, keyword_weight)
        if not scores or max(scores.values()) <= 0:
            return CategoryGuess(fallback, 0.0, True, best=None, scores=scores)
        top = max(scores.values())
        exps = {n: math.exp((s - top) / TEMPERATURE) for n, s in scores.items()}
        best = max(scores, key=lambda n: scores[n])
        confidence = exps[best] / sum(exps.values())
    fired = tuple(hits.get(best, []))
    unsure = confidence < min_confidence
    return CategoryGuess(fallback if unsure else best, round(confidence, 2), unsure,
                         model.nearest(sims), fired, best, scores)


def with_keyword_odds(probabilities: dict[str, float], hits: dict[str, list[str]],
                      keyword_odds: float) -> dict[str, float]:
    """The model's probabilities once the keywords found are taken into account: each
    keyword of a category (up to two) multiplies its odds by ``keyword_odds``, then the
    probabilities are normalised again.

    Keywords are what a lead wrote as strong evidence; the model learns them only as a few
    short messages among hundreds, so a clear "bloquée" can lose to a near tie of word
    pieces. As a fixed factor on the odds (a prior the leads' keywords carry, not a learnt
    weight) a keyword decides when the messages are unsure and hardly moves a confident
    guess: at odds 4, a category at 0.25 rises to about 0.57, one at 0.02 to about 0.08.
    """
    if keyword_odds == 1.0 or not any(hits.values()):
        return probabilities
    boosted = {name: p * keyword_odds ** min(len(hits.get(name, [])), MAX_KEYWORDS)
               for name, p in probabilities.items()}
    total = sum(boosted.values())
    return {name: p / total for name, p in boosted.items()} if total else probabilities


def _nearest_scores(model: ExampleModel, sims: np.ndarray, hits: dict[str, list[str]],
                    keyword_weight: float) -> dict[str, float]:
    scores: dict[str, float] = {}
    for name in model.names or list(hits):
        idx = [i for i, label in enumerate(model.labels) if label == name and sims[i] >= 0]
        top = sorted((float(sims[i]) for i in idx), reverse=True)[:NEAREST_PER_CATEGORY]
        similarity = sum(top) / NEAREST_PER_CATEGORY if top else 0.0
        scores[name] = similarity + keyword_weight * min(len(hits.get(name, [])),
                                                          MAX_KEYWORDS)
    return scores
