"""Precision and recall of the gibberish check on a labelled set (used by tests and bench)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.spamfilter.gibberish import score
from pipeline.spamfilter.policy import Thresholds


@dataclass
class Evaluation:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    true_negatives: int = 0
    false_positive_texts: list[str] = field(default_factory=list)
    false_negative_texts: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    def summary(self) -> str:
        return (f"gibberish: precision {self.precision:.3f} recall {self.recall:.3f} "
                f"(tp={self.true_positives} fp={self.false_positives} "
                f"fn={self.false_negatives} tn={self.true_negatives})")


def evaluate(path: str | Path, thresholds: Thresholds | None = None,
             *, section: str = "") -> Evaluation:
    """Judge every text of ``<section>ok`` and ``<section>gibberish`` (``holdout_`` for the
    held-out lists)."""
    th = thresholds or Thresholds()
    labelled = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    result = Evaluation()
    for label, texts in (("ok", labelled[f"{section}ok"]),
                         ("gibberish", labelled[f"{section}gibberish"])):
        for text in texts:
            flagged = score(text).is_gibberish(th.gibberish_ratio, th.gibberish_min_letters)
            if label == "gibberish":
                if flagged:
                    result.true_positives += 1
                else:
                    result.false_negatives += 1
                    result.false_negative_texts.append(text)
            elif flagged:
                result.false_positives += 1
                result.false_positive_texts.append(text)
            else:
                result.true_negatives += 1
    return result
