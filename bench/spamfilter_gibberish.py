"""Gibberish check: precision/recall on the labelled set and texts judged per second.

Run: /work/venv/bin/python bench/spamfilter_gibberish.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from pipeline.spamfilter.evaluate import evaluate  # noqa: E402
from pipeline.spamfilter.gibberish import score  # noqa: E402
from pipeline.spamfilter.policy import Thresholds  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "gibberish.yaml"


def main() -> None:
    data = yaml.safe_load(LABELLED.read_text(encoding="utf-8"))
    print(f"labelled set: {len(data['ok'])} ok, {len(data['gibberish'])} gibberish")
    for ratio in (0.3, 0.4, 0.5, 0.6, 0.7):
        result = evaluate(LABELLED, Thresholds(gibberish_ratio=ratio))
        marker = "  <- shipped" if ratio == Thresholds().gibberish_ratio else ""
        print(f"threshold {ratio:.1f}: {result.summary()}{marker}")
    held = evaluate(LABELLED, section="holdout_")
    print(f"held-out set ({len(data['holdout_ok'])} ok, {len(data['holdout_gibberish'])} "
          f"gibberish): {held.summary()}")
    result = evaluate(LABELLED)
    for text in result.false_negative_texts:
        print(f"  missed at 0.5: {text!r}")
    texts = data["ok"] + data["gibberish"] + data["holdout_ok"] + data["holdout_gibberish"]
    rounds = 50
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            score(text)
    elapsed = time.perf_counter() - started
    print(f"speed: {rounds * len(texts) / elapsed:,.0f} texts/s "
          f"({elapsed / (rounds * len(texts)) * 1e6:.1f} µs per text)")


if __name__ == "__main__":
    main()
