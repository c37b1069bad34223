"""Per-message dedup time with 1,000 and with 100,000 open cases, in one run.

The open cases are spread over many accounts (10 per account, so 100 and 10,000 accounts);
each measured message goes to a random account and runs what the agent does per message:
read the account's entry from the table (JSON bytes, as the rocksdb:// store used in
production holds it), decode it, extract the
references, decide (thread / reference / conversation / fuzzy / new), serialise the entry
to write back (not stored, so both runs keep 10 cases per account).
Since the work only touches one account's cases, the ratio should stay near 1.

    python bench/dedup_scaling.py [--messages 3000] [--cases-per-account 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.dedup.config import DedupConfig  # noqa: E402
from pipeline.dedup.core import AccountCases, OpenCase, assign, summary_words  # noqa: E402
from pipeline.dedup.refs import envelope_references  # noqa: E402
from pipeline.envelope import Channel, Envelope, Identity, Sender  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SUBJECTS = [
    "Depuis la mise à jour notre imprimante n'imprime plus les étiquettes d'expédition",
    "Où configurer la TVA intracommunautaire sur les factures clients",
    "Impossible de me connecter au portail, mot de passe refusé",
    "The mobile app crashes when I open the dashboard after login",
    "How do I change the billing address printed on our invoices",
    "Export comptable vers Sage : les écritures sont en double",
    "Le lecteur de code-barres ne reconnaît plus les articles",
    "Could you add an option to schedule reports every Monday",
    "Remboursement demandé pour un double prélèvement en octobre",
    "La synchronisation des stocks avec la boutique en ligne est en retard",
]
FOLLOW_UPS = [
    "toujours bloqué sur la commande {code}",
    "L'imprimante n'imprime toujours plus les étiquettes, c'est urgent",
    "Any news? The app still crashes on the dashboard",
    "Nouvelle question : comment ajouter un utilisateur au compte ?",
    "Je relance pour la facture FAC-2026-{n:04d}",
]


def build_table(total_cases: int, per_account: int, config: DedupConfig,
                rng: random.Random) -> dict[str, bytes]:  # type: ignore[type-arg]
    table: dict[str, bytes] = {}  # type: ignore[type-arg]
    for a in range(total_cases // per_account):
        account = f"acct-{a:06d}"
        cases = []
        for c in range(per_account):
            subject = rng.choice(SUBJECTS)
            at = NOW - timedelta(hours=rng.uniform(1, 24 * 20))
            env = Envelope(channel=Channel.EMAIL, source_id=f"{account}-{c}", text=subject,
                           received_at=at)
            cases.append(OpenCase(
                case_id=f"C-{a:06d}{c:04d}", opened_at=at, last_activity=at,
                channel=Channel.EMAIL, sender=f"email:user{c}@{account}.fr", subject=subject,
                summary=" ".join(summary_words(env))[:config.summary_chars],
                refs=[f"order:{rng.choice('ABCDEFGHJKMNPQRSTUVWXYZ')}{rng.randint(10, 99)}"],
                message_ids=[env.id], thread_ids=[f"{account}-{c}"],
                opening_message_id=env.id, message_count=1, deprioritised=c > 0))
        table[account] = AccountCases(open=cases).model_dump_json().encode()
    return table


def messages(count: int, accounts: int, rng: random.Random) -> list[tuple[str, Envelope]]:
    out = []
    for i in range(count):
        account = f"acct-{rng.randrange(accounts):06d}"
        text = rng.choice(FOLLOW_UPS + SUBJECTS).format(
            code=f"{rng.choice('ABCDEFGHJKMNPQRSTUVWXYZ')}{rng.randint(10, 99)}", n=i)
        out.append((account, Envelope(
            channel=rng.choice([Channel.EMAIL, Channel.WHATSAPP, Channel.CHAT]),
            source_id=f"bench-{i}", text=text, received_at=NOW,
            sender=Sender(email=f"user{rng.randrange(10)}@{account}.fr"),
            identity=Identity(identified=True, account_id=account))))
    return out


def measure(table: dict[str, bytes], batch: list[tuple[str, Envelope]],  # type: ignore[type-arg]
            config: DedupConfig) -> list[float]:
    timings = []
    for account, env in batch:
        started = time.perf_counter()
        stored = table.get(account)
        cases = AccountCases.model_validate_json(stored) if stored else AccountCases()
        refs = envelope_references(env, config.reference_patterns)
        decision = assign(cases, env, refs, config, NOW)
        written = decision.cases.model_dump_json().encode()
        timings.append(time.perf_counter() - started)
        # Not kept: every account stays at its initial size in both runs, so the only
        # difference between them is the total number of cases (the agent does keep it).
        del written
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cases-per-account", type=int, default=10)
    args = parser.parse_args()
    config = DedupConfig()
    sizes = (1_000, 100_000)
    tables, batches = {}, {}
    for total in sizes:
        rng = random.Random(42)
        started = time.perf_counter()
        tables[total] = build_table(total, args.cases_per_account, config, rng)
        print(f"{total:>7} open cases over {len(tables[total]):>6} accounts "
              f"(built in {time.perf_counter() - started:4.1f} s)")
        batches[total] = messages(args.messages, len(tables[total]), rng)
        measure(tables[total], batches[total][:200], config)  # warm-up
    # Rounds alternate between the two tables, so drift and noise from other processes on
    # the machine hit both alike (measured once one after the other, the second run was up
    # to 1.5x slower whichever it was).
    timings: dict[int, list[float]] = {total: [] for total in sizes}
    chunk = max(1, args.messages // args.rounds)
    for r in range(args.rounds):
        for total in sizes if r % 2 == 0 else reversed(sizes):
            timings[total] += measure(tables[total],
                                      batches[total][r * chunk:(r + 1) * chunk], config)
    for total in sizes:
        t = sorted(timings[total])
        p99 = t[int(0.99 * len(t))]
        print(f"{total:>7} open cases: per message mean {statistics.mean(t) * 1e6:6.1f} µs, "
              f"median {statistics.median(t) * 1e6:6.1f} µs, p99 {p99 * 1e6:6.1f} µs"
              f" ({len(t)} messages)")
    ratio_mean = statistics.mean(timings[100_000]) / statistics.mean(timings[1_000])
    ratio_median = statistics.median(timings[100_000]) / statistics.median(timings[1_000])
    print(f"ratio 100,000 / 1,000 cases: median {ratio_median:.2f}, mean {ratio_mean:.2f} "
          "(near 1 = cost independent of the total number of cases)")


if __name__ == "__main__":
    main()
