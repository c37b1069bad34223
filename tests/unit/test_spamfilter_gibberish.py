"""The gibberish check on the labelled set: precision and recall, printed and bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.spamfilter.evaluate import evaluate
from pipeline.spamfilter.gibberish import looks_like_mojibake, score, word_problem

LABELLED = Path(__file__).resolve().parents[1] / "data" / "gibberish.yaml"


@pytest.mark.parametrize("section", ["", "holdout_"])
def test_labelled_set_precision_and_recall(capsys, section):
    result = evaluate(LABELLED, section=section)
    with capsys.disabled():
        print(f"\n{section or 'tuning '}set {result.summary()}")
        for text in result.false_positive_texts:
            print(f"  false positive: {text!r}")
        for text in result.false_negative_texts:
            print(f"  missed: {text!r}")
    # A real question quarantined costs a customer; a missed mash costs an agent a glance.
    assert result.precision == 1.0, result.false_positive_texts
    assert result.recall >= 0.9, result.false_negative_texts


@pytest.mark.parametrize("word,problem", [
    ("azeazeaze", "repeated pattern"), ("aaaaaa", "one letter repeated"),
    ("bvcxw", "no vowel"), ("mustrplkoa", "consonant cluster"), ("asdfghjkl", None),
    ("poiuytreza", "keyboard row"), ("a8f9s7d6f5g4", "random characters"),
])
def test_why_a_word_is_rejected(word, problem):
    found = word_problem(word)
    assert (found is not None) if problem is None else found == problem


@pytest.mark.parametrize("word", ["TVA", "MH38", "F2024-118", "merciiii", "hahaha", "Krzyzewski",
                                  "strengths", "rythme", "schtroumpf", "iPad", "SIRET"])
def test_real_words_and_references_pass(word):
    assert word_problem(word) is None


def test_mojibake_is_recognised_by_repair():
    assert looks_like_mojibake("La facture nÂ° 118 est erronÃ©e")
    assert not looks_like_mojibake("La facture n° 118 est erronée")
    assert score("ï¿½ï¿½").mojibake
