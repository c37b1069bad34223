"""Identify and spam-filter cores: messages per second on one core, directory size varied.

Run: /work/venv/bin/python bench/identify_spam_core.py
Pure functions only (no broker): the ceiling the agents can reach per partition.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.envelope import Channel, Envelope, Sender  # noqa: E402
from pipeline.identify.core import identify  # noqa: E402
from pipeline.identify.directory import Account, Directory, DirectoryEmployee  # noqa: E402
from pipeline.spamfilter.core import judge  # noqa: E402
from pipeline.spamfilter.policy import load_policy  # noqa: E402

TEXTS = ["Où configurer la TVA ?", "Bonjour, la commande MH38 est bloquée depuis ce matin",
         "qsdfqsdfqsdf", "Hi, order X45Q has been stuck since this morning", "Bonjour, merci !"]


def directory_of(size: int) -> Directory:
    d = Directory("FR")
    for i in range(size):
        account = Account(id=f"ACC-{i // 5}", tier="standard" if i % 3 else "premium")
        d.apply(f"E{i}", DirectoryEmployee(id=f"E{i}", account=account,
                                           emails=[f"employee{i}@client{i // 5}.fr"],
                                           phones=[f"+336{10_000_000 + i:08d}"]))
    return d


def messages(n: int, size: int) -> list[Envelope]:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    out = []
    for i in range(n):
        # Half known senders, half unknown; national and international formats mixed.
        number = 10_000_000 + (i * 7919) % (2 * size)
        phone = f"06 {str(number)[0:2]} {str(number)[2:4]} {str(number)[4:6]} {str(number)[6:8]}" \
            if i % 2 else f"+336{number:08d}"
        out.append(Envelope(channel=Channel.WHATSAPP, source_id=f"S{i}", received_at=now,
                            sender=Sender(phone=phone), text=TEXTS[i % len(TEXTS)]))
    return out


def main() -> None:
    policy = load_policy(ROOT / "config" / "spam.yaml")
    for size in (1_000, 20_000):
        started = time.perf_counter()
        directory = directory_of(size)
        built = time.perf_counter() - started
        batch = messages(5_000, size)
        started = time.perf_counter()
        for env in batch:
            env.identity = identify(env, directory)
        t_identify = time.perf_counter() - started
        started = time.perf_counter()
        verdicts = [judge(env, policy) for env in batch]
        t_judge = time.perf_counter() - started
        known = sum(1 for e in batch if e.identity and e.identity.identified)
        quarantined = sum(1 for v in verdicts if v.quarantined)
        print(f"directory {size:>6} employees (built in {built:.2f} s): "
              f"identify {len(batch) / t_identify:,.0f} msg/s, judge {len(batch) / t_judge:,.0f} "
              f"msg/s ({known} known, {quarantined} quarantined of {len(batch)})")


if __name__ == "__main__":
    main()
