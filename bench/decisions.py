"""Dedup and route decisions scored on the labelled corpus (bench/data/decisions/).

Replays every message of the chosen split, in time order, through the pure cores as the
worker chains them (identify → dedup → route; no broker), with the clock set to each
message's ``received_at``, and prints:

- merges: pairwise precision / recall / F1 and B-cubed over the messages of each account,
  the wrong merges with the evidence the decision recorded, and the missed ones;
- categories: accuracy, macro-F1 and the confusion matrix, on every message as routed
  (what a lead sees in the queue) and on the opening message of each labelled case alone
  (the classifier by itself);
- deprioritisation: accuracy of ``case.deprioritised`` against the label.

    nice -n 10 python bench/decisions.py --split all --show 0
    nice -n 10 python bench/decisions.py --split tuning --show 20
    nice -n 10 python bench/decisions.py --split heldout2 --show 0

Tune on ``tuning`` only (``--split cv`` is the tuning signal). Held-out v1, whose mistakes
were read in earlier rounds, became part of ``tuning`` in the fifth round; ``heldout2``
(held-out v2) and later held-out splits are the blind figures.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations, product
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.dedup.config import DedupConfig  # noqa: E402
from pipeline.dedup.core import AccountCases, account_key, assign  # noqa: E402
from pipeline.dedup.refs import envelope_references  # noqa: E402
from pipeline.envelope import (  # noqa: E402
    AppIdentity,
    Attachment,
    AttachmentKind,
    CaseLink,
    Channel,
    Envelope,
    Routing,
    Sender,
    Thread,
    Transcript,
)
from pipeline.identify.core import identify, partition_key  # noqa: E402
from pipeline.identify.directory import Account, Directory, DirectoryEmployee  # noqa: E402
from pipeline.route import core as route_core  # noqa: E402
from pipeline.route.rules import PastMessage, RoutingRules, load_rules  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "data" / "decisions"
MONDAY = datetime(2026, 11, 23, tzinfo=ZoneInfo("Europe/Paris"))
# Category names of rule files written before the default set of issue 14.
ALIASES = {"how-to": "question"}
# How each split is named in the report.
# How each split is named in the report.
SPLIT_TITLES = {"tuning": "tuning", "heldout2": "held-out v2", "heldout4": "held-out v4",
                "heldout5": "held-out v5"}
SPLIT_SETS = {"all": ["tuning", "heldout2", "heldout4", "heldout5"]}


@dataclass
class Labelled:
    """One corpus message: its envelope and its labels."""

    envelope: Envelope
    account: str
    case: str  # account-qualified case label
    category: str
    deprioritised: bool
    opens: bool  # first message of its labelled case


def _at(value: str) -> datetime:
    day, clock = value.split()
    hours, minutes = clock.split(":")
    return MONDAY + timedelta(days=int(day.lstrip("d")) - 1, hours=int(hours),
                              minutes=int(minutes))


def _case_labels(account: dict[str, Any]) -> dict[str, tuple[str, bool | None]]:
    labels = {}
    for name, value in account["cases"].items():
        if isinstance(value, str):
            labels[name] = (value, None)
        else:
            labels[name] = (value["category"], value.get("deprioritised"))
    return labels


def _envelope(account: dict[str, Any], i: int, msg: dict[str, Any],
              employees: dict[str, dict[str, Any]], domain_ids: dict[str, str]) -> Envelope:
    by = msg["by"]
    person = employees[by] if isinstance(by, str) else dict(by)
    channel = msg["ch"]
    at = _at(msg["at"])
    text = msg.get("text", "")
    source_id = f"{account['id']}-{i:03d}"
    phone = person.get("phone")
    if channel == "chat":
        conv = msg.get("conv") or f"{account['id']}:{by}:{msg['at'].split()[0]}"
        return Envelope(
            channel=Channel.CHAT, source_id=source_id, received_at=at, text=text,
            sender=Sender(email=person.get("email"), display_name=person.get("name"),
                          app_identity=AppIdentity(user_id=person["id"],
                                                   account_id=account["id"],
                                                   email=person.get("email"),
                                                   name=person.get("name"))),
            thread=Thread(conversation_id=conv))
    if channel in ("whatsapp", "voicenote"):
        audio = channel == "voicenote"
        return Envelope(
            channel=Channel.WHATSAPP, source_id=source_id, received_at=at,
            text="" if audio else text,
            sender=Sender(phone=phone, whatsapp_id=f"whatsapp:{phone}"),
            attachments=[Attachment(kind=AttachmentKind.AUDIO, content_type="audio/ogg")]
            if audio else [],
            transcripts=[Transcript(text=text, language=account.get("language"))]
            if audio else [])
    if channel == "voicemail":
        return Envelope(
            channel=Channel.VOICEMAIL, source_id=source_id, received_at=at, text="",
            sender=Sender(phone=phone),
            attachments=[Attachment(kind=AttachmentKind.AUDIO, content_type="audio/wav")],
            transcripts=[Transcript(text=text, language=account.get("language"))])
    if channel != "email":
        raise ValueError(f"{account['id']} message {i}: unknown channel {channel!r}")
    email = person["email"]
    message_id = f"<{msg.get('id', source_id)}@{email.split('@')[1]}>"
    domain_ids[msg.get("id", source_id)] = message_id
    in_reply_to = domain_ids[msg["re"]] if msg.get("re") else None
    return Envelope(
        channel=Channel.EMAIL, source_id=message_id, received_at=at, text=text,
        subject=msg.get("subject"), quoted_text=msg.get("quote"),
        signature=msg.get("signature"), sender=Sender(email=email),
        headers={"message-id": message_id},
        thread=Thread(in_reply_to=in_reply_to,
                      references=[in_reply_to] if in_reply_to else []))


def load_corpus(split: str, files: str = "*") -> tuple[list[Labelled], Directory]:
    """The split's messages in time order (all accounts interleaved) and the directory;
    ``files``: a glob on the corpus file names (``heldout2-3`` alone: one file's figure)."""
    directory = Directory(default_region="FR")
    out: list[Labelled] = []
    for path in sorted(CORPUS.glob(f"{files}.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc["split"] != split:
            continue
        for account in doc["accounts"]:
            acct = Account(id=account["id"], name=account["name"], tier=account["tier"],
                           country=account.get("country"), language=account.get("language"))
            employees = {e["id"]: e for e in account["employees"]}
            for e in account["employees"]:
                directory.apply(f"{acct.id}:{e['id']}", DirectoryEmployee(
                    id=f"{acct.id}:{e['id']}", name=e["name"], emails=[e["email"]],
                    phones=[e["phone"]], whatsapp_ids=[e["phone"]], account=acct))
            labels = _case_labels(account)
            order = list(dict.fromkeys(m["case"] for m in account["messages"]))
            domain_ids: dict[str, str] = {}
            seen: set[str] = set()
            for i, msg in enumerate(account["messages"]):
                name = msg["case"]
                category, depri = labels[name]
                if depri is None:
                    depri = order.index(name) > 0
                envelope = _envelope(account, i, msg, employees, domain_ids)
                out.append(Labelled(envelope, acct.id, f"{acct.id}/{name}", category, depri,
                                    name not in seen))
                seen.add(name)
    out.sort(key=lambda m: m.envelope.received_at)
    return out, directory


@dataclass
class Outcome:
    item: Labelled
    link: CaseLink
    routing: Routing

    @property
    def case_id(self) -> str:
        return self.link.case_id


def _route(envelope: Envelope, stored: Routing | None, rules: RoutingRules) -> Routing:
    """What the route agent does: a case already routed is followed, else routed."""
    route_message = getattr(route_core, "route_message", None)
    if route_message is not None:
        return route_message(envelope, stored, rules, "bench")  # type: ignore[no-any-return]
    if stored is not None:  # the rules of today's main, for the "before" figures
        case = envelope.case
        return stored if case and case.action == "opened" else route_core.follow_case(
            stored, "bench")
    return route_core.route_case(envelope, rules, "bench")


def replay(corpus: list[Labelled], directory: Directory, dedup: DedupConfig,
           rules: RoutingRules | None) -> list[Outcome]:
    """Every message through identify → dedup → route, as the agents chain them (without
    route when ``rules`` is None: dedup's figures alone)."""
    tables: dict[str, AccountCases] = defaultdict(AccountCases)
    routed: dict[str, dict[str, Routing]] = defaultdict(dict)
    outcomes = []
    for item in corpus:
        envelope = item.envelope.model_copy(deep=True)
        now = envelope.received_at
        envelope.identity = identify(envelope, directory)
        key = account_key(envelope, partition_key(envelope))
        refs = envelope_references(envelope, dedup.reference_patterns)
        decision = assign(tables[key], envelope, refs, dedup, now)
        tables[key] = decision.cases
        envelope.refs, envelope.case = refs, decision.link
        if rules is None:
            outcomes.append(Outcome(item, decision.link, Routing.model_construct()))
            continue
        routing = _route(envelope, routed[key].get(decision.link.case_id), rules)
        routed[key][decision.link.case_id] = routing
        envelope.routing = routing
        outcomes.append(Outcome(item, decision.link, routing))
    return outcomes


def _pairs(groups: dict[str, list[int]]) -> set[tuple[int, int]]:
    return {pair for members in groups.values() for pair in combinations(sorted(members), 2)}


def merge_scores(outcomes: list[Outcome]) -> dict[str, float]:
    truth: dict[str, list[int]] = defaultdict(list)
    pred: dict[str, list[int]] = defaultdict(list)
    for i, o in enumerate(outcomes):
        truth[o.item.case].append(i)
        pred[f"{o.item.account}/{o.case_id}"].append(i)
    true_pairs, pred_pairs = _pairs(truth), _pairs(pred)
    tp = len(true_pairs & pred_pairs)
    precision = tp / len(pred_pairs) if pred_pairs else 1.0
    recall = tp / len(true_pairs) if true_pairs else 1.0
    of_truth = {i: set(m) for m in truth.values() for i in m}
    of_pred = {i: set(m) for m in pred.values() for i in m}
    n = len(outcomes)
    b_p = sum(len(of_truth[i] & of_pred[i]) / len(of_pred[i]) for i in range(n)) / n
    b_r = sum(len(of_truth[i] & of_pred[i]) / len(of_truth[i]) for i in range(n)) / n
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
            "true_pairs": len(true_pairs), "predicted_pairs": len(pred_pairs), "tp": tp,
            "b3_precision": b_p, "b3_recall": b_r, "b3_f1": _f1(b_p, b_r),
            "cases_true": len(truth), "cases_predicted": len(pred)}


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def category_scores(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    labels = sorted({t for t, _ in pairs})
    confusion: Counter[tuple[str, str]] = Counter(pairs)
    accuracy = sum(n for (t, p), n in confusion.items() if t == p) / len(pairs)
    f1s = {}
    for label in labels:
        tp = confusion[(label, label)]
        fp = sum(n for (t, p), n in confusion.items() if p == label and t != label)
        fn = sum(n for (t, p), n in confusion.items() if t == label and p != label)
        f1s[label] = _f1(tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0)
    return {"accuracy": accuracy, "macro_f1": sum(f1s.values()) / len(f1s), "f1": f1s,
            "confusion": confusion, "labels": labels, "n": len(pairs)}


def _text(item: Labelled, width: int = 90) -> str:
    env = item.envelope
    body = " ".join(env.full_text().split())
    return f"[{env.channel.value} {env.received_at:%a %H:%M}] {body[:width]}"


def report(split: str, outcomes: list[Outcome], show: int) -> None:
    merges = merge_scores(outcomes)
    print(f"== split {SPLIT_TITLES.get(split, split)}: {len(outcomes)} messages, "
          f"{len({o.item.account for o in outcomes})} accounts, "
          f"{merges['cases_true']} labelled cases, {merges['cases_predicted']} opened")
    print(f"merges   pairwise precision {merges['precision']:.3f}  recall {merges['recall']:.3f}"
          f"  F1 {merges['f1']:.3f}  ({merges['tp']} of {merges['predicted_pairs']} merged pairs"
          f" right, {merges['true_pairs']} true pairs)")
    print(f"         B-cubed precision {merges['b3_precision']:.3f}  recall "
          f"{merges['b3_recall']:.3f}  F1 {merges['b3_f1']:.3f}")

    opening: dict[str, Labelled] = {}
    labels_in: dict[str, set[str]] = defaultdict(set)
    first_case: dict[str, str] = {}
    wrong, missed = [], []
    for o in outcomes:
        key = f"{o.item.account}/{o.case_id}"
        opening.setdefault(key, o.item)
        if labels_in[key] and o.item.case not in labels_in[key]:
            wrong.append(o)
        labels_in[key].add(o.item.case)
        if first_case.setdefault(o.item.case, o.case_id) != o.case_id:
            missed.append(o)
    print(f"         {len(wrong)} message(s) merged into another request's case, "
          f"{len(missed)} follow-up(s) left out of their case")
    for o in wrong[:show]:
        print(f"  WRONG  {_text(o.item)}\n         joined {_text(opening[f'{o.item.account}/{o.case_id}'])}"
              f"\n         by {o.link.matched_by} (score {o.link.score}): {'; '.join(o.link.evidence)}")
    for o in missed[:show]:
        print(f"  MISSED {_text(o.item)}\n         {o.link.matched_by}: {'; '.join(o.link.evidence)[:160]}")

    routed = [(o.item.category, ALIASES.get(o.routing.category or "", o.routing.category or ""))
              for o in outcomes]
    alone = [(o.item.category, ALIASES.get(o.routing.category or "", o.routing.category or ""))
             for o in outcomes if o.item.opens]
    for title, pairs in (("categories, every message as routed", routed),
                         ("categories, opening message of each case", alone)):
        scores = category_scores(pairs)
        print(f"{title}: accuracy {scores['accuracy']:.3f}  macro-F1 {scores['macro_f1']:.3f}"
              f"  (n={scores['n']})")
    scores = category_scores(routed)
    predicted = sorted({p for _, p in routed} | set(scores["labels"]))
    print("  confusion (rows: label, columns: routed)")
    print("  " + " " * 13 + " ".join(f"{p[:6]:>6}" for p in predicted))
    for label in scores["labels"]:
        print(f"  {label:>13}" + " ".join(f"{scores['confusion'][(label, p)]:>6}"
                                          for p in predicted))
    per = "  ".join(f"{k} {v:.2f}" for k, v in scores["f1"].items())
    print(f"  F1 per category: {per}")
    wrong_cat = [o for o in outcomes if o.item.opens and ALIASES.get(
        o.routing.category or "", o.routing.category) != o.item.category]
    for o in wrong_cat[:show]:
        print(f"  CATEGORY {o.item.category} → {o.routing.category} ({o.routing.category_reason})"
              f"\n           {_text(o.item)}")

    depri = [(o.item.deprioritised, o.link.deprioritised) for o in outcomes]
    right = sum(1 for t, p in depri if t == p)
    print(f"deprioritised: accuracy {right / len(depri):.3f}  "
          f"({sum(t for t, _ in depri)} labelled, {sum(p for _, p in depri)} flagged)")
    print()


VOCABULARY = Path(__file__).resolve().parent.parent / "pipeline" / "dedup" / "vocabulary.py"
# Words at least this common in everyday French or English (wordfreq's Zipf scale: 5 = once
# per 100,000 words) are listed with their frequency; rarer ones weigh fully.
COMMON_ZIPF = 4.5


def _general_zipf() -> dict[str, float]:
    """Stem → Zipf frequency of its commonest form in everyday French or English (wordfreq:
    subtitles, Wikipedia, news, web; a background far larger than any support corpus)."""
    try:
        from wordfreq import iter_wordlist, zipf_frequency
    except ImportError as exc:  # only this generator needs it, not the pipeline
        raise SystemExit("--write-vocabulary needs wordfreq: pip install 'wordfreq>=3.1'") from exc

    from pipeline.dedup.similarity import STOP_WORDS, stem
    from pipeline.textnorm import words

    found: dict[str, float] = {}
    for lang in ("fr", "en"):
        for word in iter_wordlist(lang):
            zipf = zipf_frequency(word, lang)
            if zipf < COMMON_ZIPF:
                break  # the list is in decreasing frequency
            for w in words(word):
                if w in STOP_WORDS or len(w) <= 2 or w.isdigit():
                    continue
                s = stem(w)
                found[s] = max(found.get(s, 0.0), zipf)
    return found


def document_frequency(corpus: list[Labelled], directory: Directory, rules: RoutingRules
                       ) -> tuple[Counter[str], int, int]:
    """Stem → number of messages using it, over ``corpus`` and the leads' example messages
    of ``rules`` (the YAML ones only: the past messages are the corpus itself); the number
    of documents and of examples."""
    from pipeline.dedup.similarity import stems, subject_words

    df: Counter[str] = Counter()
    for item in corpus:
        envelope = item.envelope.model_copy()
        envelope.identity = identify(envelope, directory)
        df.update(stems(subject_words(envelope)))
    examples = [text for category in rules.categories for text in category.examples]
    for text in examples:
        df.update(stems(subject_words(Envelope(channel=Channel.CHAT, source_id="example",
                                               received_at=MONDAY, text=text))))
    return df, len(corpus) + len(examples), len(examples)


def write_vocabulary(min_df: int = 2, rules_path: str = "config/routing.yaml") -> None:
    """pipeline/dedup/vocabulary.py: document frequency of stems over the *tuning* split and
    the example messages of ``config/routing.yaml`` (support messages of this product), and
    the everyday-language frequency of common stems (wordfreq). Never the held-out split."""
    corpus, directory = load_corpus("tuning")
    rules, _ = load_rules(rules_path)
    df, documents, n_examples = document_frequency(corpus, directory, rules)
    examples = range(n_examples)
    kept = {s: n for s, n in sorted(df.items()) if n >= min_df}
    general = dict(sorted(_general_zipf().items()))
    lines = ['"""Background frequencies of word stems (dedup.similarity): how generic a word is.',
             "",
             "Generated by ``bench/decisions.py --write-vocabulary``. DOCUMENT_FREQUENCY: over",
             f"the tuning split of bench/data/decisions/ ({len(corpus)} messages) and the",
             f"{len(examples)} example messages of config/routing.yaml; stems seen fewer than "
             f"{min_df} times are",
             "left out (they weigh as unseen ones: fully informative). GENERAL_ZIPF: the",
             "frequency of the stem's commonest form in everyday French or English (wordfreq,",
             f"Zipf scale), for stems at least {COMMON_ZIPF:g}. Do not edit by hand.\"\"\"",
             "", f"SAMPLE_MESSAGES = {documents}", "DOCUMENT_FREQUENCY: dict[str, int] = {"]

    def rows(items: list[str]) -> list[str]:
        out, row = [], "   "
        for item in items:
            if len(row) + len(item) > 99:
                out.append(row)
                row = "   "
            row += item
        return out + [row]

    lines += rows([f' "{s}": {n},' for s, n in kept.items()])
    lines += ["}", "GENERAL_ZIPF: dict[str, float] = {"]
    lines += rows([f' "{s}": {z:.2f},' for s, z in general.items()])
    lines += ["}", ""]
    VOCABULARY.write_text("\n".join(lines))
    print(f"{VOCABULARY}: {len(kept)} stems from {documents} messages, "
          f"{len(general)} common everyday stems")


# Cross-validation on the tuning split: folds of whole accounts (a customer's messages are
# never on both sides), fixed by a hash of the account id so every run uses the same folds.
CV_FOLDS = 5
# Dedup settings chosen on the training folds (``--choose``): the candidate values, and the
# precision a choice must keep there (a hidden request costs more than a split case).
DEDUP_GRID: dict[str, list[float]] = {
    "threshold": [30.0, 40.0, 50.0],
    "min_shared_weight": [1.0, 1.3, 1.6],
    "single_case_hours": [0.0, 4.0, 24.0],
    "single_case_max_weight": [1.0, 1.5, 2.0],
}
MIN_MERGE_PRECISION = 0.95


def account_folds(corpus: list[Labelled], k: int = CV_FOLDS) -> list[set[str]]:
    accounts = sorted({i.account for i in corpus},
                      key=lambda a: hashlib.sha1(a.encode()).hexdigest())
    return [set(accounts[i::k]) for i in range(k)]


@contextmanager
def vocabulary_of(corpus: list[Labelled], directory: Directory, rules: RoutingRules,
                  min_df: int = 2) -> Iterator[None]:
    """Dedup's word weights from ``corpus`` alone (as ``--write-vocabulary`` would write
    them from it): the held-out fold's messages do not make its own words rarer or
    commoner."""
    from pipeline.dedup import similarity as sim

    saved = dict(sim.DOCUMENT_FREQUENCY), sim.SAMPLE_MESSAGES
    df, documents, _ = document_frequency(corpus, directory, rules)
    sim.DOCUMENT_FREQUENCY.clear()
    sim.DOCUMENT_FREQUENCY.update({s: n for s, n in df.items() if n >= min_df})
    sim.SAMPLE_MESSAGES = documents  # type: ignore[misc]
    sim.weight.cache_clear()
    try:
        yield
    finally:
        sim.DOCUMENT_FREQUENCY.clear()
        sim.DOCUMENT_FREQUENCY.update(saved[0])
        sim.SAMPLE_MESSAGES = saved[1]  # type: ignore[misc]
        sim.weight.cache_clear()


def past_messages(corpus: list[Labelled]) -> list[PastMessage]:
    """What a lead labels from past traffic: the opening message of each case and its
    category (follow-ups such as "merci !" say nothing of the category)."""
    out = []
    for item in corpus:
        if item.opens:
            text = " ".join(item.envelope.full_text().split())
            if text:
                out.append(PastMessage(category=item.category, text=text))
    return out


def choose_dedup(corpus: list[Labelled], directory: Directory, base: dict[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, float]]:
    """The grid's settings with the best pairwise F1 among those keeping precision ≥
    MIN_MERGE_PRECISION on ``corpus`` (ties: the stricter settings)."""
    names = list(DEDUP_GRID)
    best: tuple[tuple[float, ...], dict[str, Any], dict[str, float]] | None = None
    for values in product(*(DEDUP_GRID[n] for n in names)):
        settings = {**base, **dict(zip(names, values, strict=True))}
        scores = merge_scores(replay(corpus, directory, DedupConfig(**settings), None))
        ok = scores["precision"] >= MIN_MERGE_PRECISION
        key = (float(ok), scores["f1"] if ok else scores["precision"], *values)
        if best is None or key > best[0]:
            best = (key, settings, scores)
    assert best is not None
    return best[1], best[2]


def load_rules_with(path: str, overrides: dict[str, Any]) -> RoutingRules:
    """The rules file with some of its top-level settings replaced (``--set``), validated
    again."""
    rules, _ = load_rules(path)
    if not overrides:
        return rules
    return RoutingRules.model_validate({**rules.model_dump(), **overrides})


def cross_validate(rules_path: str, dedup_settings: dict[str, Any], choose: bool,
                   files: str, show: int, rules_overrides: dict[str, Any] | None = None
                   ) -> None:
    """Mean over folds of the figures on each held-out fold, everything that learns from
    messages (dedup's word weights, the past messages of the category classifier, dedup
    settings with ``--choose``) fitted on the other folds only."""
    corpus, directory = load_corpus("tuning", files)
    rules = load_rules_with(rules_path, rules_overrides or {})
    folds = account_folds(corpus)
    rows = []
    pooled: list[Outcome] = []
    for k, held in enumerate(folds):
        train = [i for i in corpus if i.account not in held]
        test = [i for i in corpus if i.account in held]
        fold_rules = rules
        if rules.examples_file is not None:
            fold_rules = rules.model_copy(update={"past_messages": past_messages(train)})
        with vocabulary_of(train, directory, rules):
            settings, chosen = dict(dedup_settings), None
            if choose:
                settings, chosen = choose_dedup(train, directory, dedup_settings)
            outcomes = replay(test, directory, DedupConfig(**settings), fold_rules)
        merges = merge_scores(outcomes)
        cats = category_scores([(o.item.category, ALIASES.get(o.routing.category or "",
                                                             o.routing.category or ""))
                                for o in outcomes])
        rows.append((merges["precision"], merges["recall"], merges["f1"], cats["accuracy"],
                     cats["macro_f1"]))
        pooled += outcomes
        picked = ("" if chosen is None else "  chosen " + " ".join(
            f"{n}={settings[n]:g}" for n in DEDUP_GRID) + f" (train P {chosen['precision']:.3f}"
            f" R {chosen['recall']:.3f})")
        print(f"fold {k + 1}: {len(test):>3} msgs {len(held):>2} accounts  merges P "
              f"{rows[-1][0]:.3f} R {rows[-1][1]:.3f} F1 {rows[-1][2]:.3f}  categories acc "
              f"{rows[-1][3]:.3f} macro-F1 {rows[-1][4]:.3f}{picked}")
    mean = [sum(r[i] for r in rows) / len(rows) for i in range(5)]
    print(f"== cross-validation, tuning split, {len(folds)} folds by account: mean merges P "
          f"{mean[0]:.3f} R {mean[1]:.3f} F1 {mean[2]:.3f}  categories acc {mean[3]:.3f} "
          f"macro-F1 {mean[4]:.3f}")
    report("cv (pooled held-out folds)", pooled, show)


EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "category_examples.yaml"


def write_examples(path: Path = EXAMPLES) -> None:
    """config/category_examples.yaml: the opening message of every case of the *tuning*
    split and its category, as a lead would label past traffic. Never the held-out ones."""
    corpus, _ = load_corpus("tuning")
    messages = past_messages(corpus)
    lines = ["# Past messages your support leads labelled: the category classifier of",
             "# routing.yaml (examples_file) learns from them beside the examples written there.",
             "# Add a message with the category its case turned out to be in; one message per",
             "# case (the one that opened it: a follow-up such as \"merci\" says nothing).",
             "# Written from the tuning split of bench/data/decisions/ by",
             "# `python bench/decisions.py --write-examples` (never from the held-out splits).",
             "messages:"]
    for m in sorted(messages, key=lambda m: m.category):
        text = yaml.safe_dump(m.text, allow_unicode=True, width=10_000).strip()
        lines.append(f"  - category: {m.category}\n    text: {text.removesuffix('...').strip()}")
    path.write_text("\n".join(lines) + "\n")
    check = yaml.safe_load(path.read_text())
    assert [(m["category"], m["text"]) for m in check["messages"]] == [
        (m.category, m.text) for m in sorted(messages, key=lambda m: m.category)]
    print(f"{path}: {len(messages)} labelled past messages")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=[*SPLIT_TITLES, *SPLIT_SETS, "cv"],
                        default="tuning",
                        help="all: tuning and every held-out split; cv: "
                             f"{CV_FOLDS}-fold cross-validation on tuning, by account")
    parser.add_argument("--choose", action="store_true",
                        help="with --split cv: choose dedup settings on each fold's training "
                             "accounts (grid DEDUP_GRID)")
    parser.add_argument("--files", default="*", metavar="GLOB",
                        help="only the corpus files matching GLOB (without .yaml), e.g. "
                             "heldout2-3")
    parser.add_argument("--rules", default="config/routing.yaml")
    parser.add_argument("--show", type=int, default=10, help="mistakes shown per kind")
    parser.add_argument("--dedup", action="append", default=[], metavar="KEY=VALUE",
                        help="override a dedup setting, e.g. --dedup scorer=WRatio")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a top-level setting of the rules file, e.g. "
                             "--set keyword_odds=4")
    parser.add_argument("--write-vocabulary", action="store_true",
                        help="regenerate pipeline/dedup/vocabulary.py from the tuning split, "
                             "the routing examples and wordfreq")
    parser.add_argument("--write-examples", action="store_true",
                        help="regenerate config/category_examples.yaml (past messages the "
                             "leads labelled) from the tuning split")
    args = parser.parse_args(argv)
    if args.write_examples:
        write_examples()
        return 0
    if args.write_vocabulary:
        write_vocabulary()
        return 0
    overrides = dict(kv.split("=", 1) for kv in args.dedup)
    rules_overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    if args.split == "cv":
        cross_validate(args.rules, overrides, args.choose, args.files, args.show,
                       rules_overrides)
        return 0
    rules = load_rules_with(args.rules, rules_overrides)
    splits = SPLIT_SETS.get(args.split, [args.split])
    for split in splits:
        corpus, directory = load_corpus(split, args.files)
        if not corpus:
            continue
        dedup = DedupConfig(**overrides)
        report(split, replay(corpus, directory, dedup, rules), args.show)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
