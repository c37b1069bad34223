"""Which category a customer's message is in, from the leads' example messages and keywords.

Each category of ``routing.yaml`` has example messages written by the support leads. A
message is compared with every example by character n-gram TF-IDF (scikit-learn: robust to
French inflection, typos and missing accents); a category's similarity is the mean of its
three nearest examples, and each of its keywords found in the message adds
``keyword_weight`` (strong evidence). The confidence is the share of the best category in a
softmax over the categories; below ``min_confidence`` the message goes to the fallback
category (``default_category``), and the reason says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from pipeline.textnorm import fold

NEAREST_PER_CATEGORY = 3
# Softmax temperature on the combined scores (similarities are cosines, 0-1).
TEMPERATURE = 0.05


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
    """The TF-IDF space of the examples of one rules file (built once per file)."""

    def __init__(self, examples: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        self.texts = [text for _, texts in examples for text in texts]
        self.labels = [name for name, texts in examples for _ in texts]
        self.names = [name for name, _ in examples]
        self.vectorizer: TfidfVectorizer | None = None
        if self.texts:
            self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5),
                                              preprocessor=fold, sublinear_tf=True,
                                              min_df=1)
            self.matrix = self.vectorizer.fit_transform(self.texts)

    def similarities(self, text: str) -> np.ndarray:
        if self.vectorizer is None:
            return np.zeros(0)
        vector = self.vectorizer.transform([text])
        return (self.matrix @ vector.T).toarray().ravel()  # type: ignore[no-any-return]


@lru_cache(maxsize=8)
def example_model(examples: tuple[tuple[str, tuple[str, ...]], ...]) -> ExampleModel:
    """Cached by content: a reloaded file with the same examples reuses its model."""
    return ExampleModel(examples)


def guess(text: str, examples: tuple[tuple[str, tuple[str, ...]], ...],
          keyword_hits: dict[str, list[str]], *, keyword_weight: float,
          min_confidence: float, fallback: str, exclude: int | None = None) -> CategoryGuess:
    """The category of ``text``; ``keyword_hits`` are the keywords found per category.

    ``exclude``: index of an example to leave out (``rules check`` classifying the examples
    themselves).
    """
    model = example_model(examples)
    sims = model.similarities(text)
    if exclude is not None and len(sims):
        sims[exclude] = -1.0
    scores: dict[str, float] = {}
    nearest: list[Nearest] = []
    for name in model.names or [c for c in keyword_hits]:
        idx = [i for i, label in enumerate(model.labels) if label == name and sims[i] >= 0]
        top = sorted((float(sims[i]) for i in idx), reverse=True)[:NEAREST_PER_CATEGORY]
        similarity = sum(top) / NEAREST_PER_CATEGORY if top else 0.0
        hits = len(keyword_hits.get(name, []))
        scores[name] = similarity + keyword_weight * min(hits, 2)
    for name in keyword_hits:
        scores.setdefault(name, keyword_weight * min(len(keyword_hits[name]), 2))
    if not scores or max(scores.values()) <= 0:
        return CategoryGuess(fallback, 0.0, True, best=None, scores=scores)
    exps = {n: math.exp((s - max(scores.values())) / TEMPERATURE) for n, s in scores.items()}
    best = max(scores, key=lambda n: scores[n])
    confidence = exps[best] / sum(exps.values())
    order: list[int] = [int(i) for i in np.argsort(-sims)[:3]] if len(sims) else []
    nearest = [Nearest(model.texts[i], model.labels[i], round(float(sims[i]), 2))
               for i in order if sims[i] > 0]
    fired = tuple(keyword_hits.get(best, []))
    if confidence < min_confidence:
        return CategoryGuess(fallback, round(confidence, 2), True, tuple(nearest), fired, best,
                             scores)
    return CategoryGuess(best, round(confidence, 2), False, tuple(nearest), fired, best, scores)
