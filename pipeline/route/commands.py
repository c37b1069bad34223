"""``pipeline rules check|test|replay``: tools for the support leads who edit routing.yaml."""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipeline.broker import with_broker
from pipeline.envelope import (
    Attachment,
    AttachmentKind,
    CaseLink,
    Channel,
    Envelope,
    Identity,
    Reference,
    Sender,
)
from pipeline.errors import ConfigError
from pipeline.kafka import consumer, partitions_of, read_records
from pipeline.route.core import Classification, MessageText, classify, route_case
from pipeline.route.rules import RoutingRules, load_rules
from pipeline.runtime_settings import BrokerSettings
from pipeline.topics import Topic, TopicNames


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rules = sub.add_parser("rules", help="check, try and replay routing rules (support leads)")
    rsub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    p = rsub.add_parser("check", help="validate a rules file (problems with their line)")
    p.add_argument("file")
    p.set_defaults(func=cmd_check)

    p = rsub.add_parser("test", help="route one made-up message: category, rule, queue, why")
    p.add_argument("file")
    p.add_argument("--channel", choices=[c.value for c in Channel], default="email")
    p.add_argument("--text", required=True)
    p.add_argument("--subject")
    p.add_argument("--account", help="account id")
    p.add_argument("--tier")
    p.add_argument("--country")
    p.add_argument("--language")
    p.add_argument("--ref", action="append", default=[], metavar="KIND:VALUE",
                   help="a reference dedup would have found, e.g. order:MH38 (repeatable)")
    p.add_argument("--deprioritised", action="store_true",
                   help="the customer already has an open case")
    p.add_argument("--audio", action="store_true", help="the message has an audio attachment")
    p.add_argument("--attachment", action="store_true", help="the message has an attachment")
    p.add_argument("--at", help="when the customer wrote (ISO 8601; default: now)")
    p.set_defaults(func=cmd_test)

    p = rsub.add_parser("replay", help="re-route recent cases from cases.routed with a "
                        "candidate file: how many would move, from which queue to which")
    p.add_argument("file")
    p.add_argument("--hours", type=float, default=24 * 7, help="look back (default 168)")
    p.add_argument("--limit", type=int, default=50_000, help="at most this many cases")
    p.set_defaults(func=cmd_replay)


# Fewer examples than this and a category is guessed from too little (warned by check).
MIN_EXAMPLES = 8


# The linear classifier classifies each example with a model learnt without it: the
# examples are cut into this many folds, one fit per fold (a fit per example is too slow).
CHECK_FOLDS = 5


def category_warnings(rules: RoutingRules) -> list[str]:
    """Categories with few examples, and examples that classify into another category
    (each example classified without itself: against all the others with ``nearest``, by a
    model learnt on the other folds with ``linear``)."""
    warnings = []
    for category in rules.categories:
        if len(category.examples) < MIN_EXAMPLES:
            warnings.append(f"category {category.name}: {len(category.examples)} example(s), "
                            f"fewer than {MIN_EXAMPLES}: add messages as customers write them")
    examples = [(c.name, e) for c in rules.categories for e in c.examples]
    for index, (name, example) in enumerate(examples):
        found = _classified_without(rules, examples, index)
        if found.category != name:
            warnings.append(f"category {name}: example «{example}» classifies "
                            f"as {found.category} ({found.reason})")
    return warnings


def _classified_without(rules: RoutingRules, examples: list[tuple[str, str]],
                        index: int) -> Classification:
    env = Envelope(channel=Channel.EMAIL, source_id="check", text=examples[index][1],
                   received_at=datetime.now(UTC))
    if rules.classifier != "linear":
        return classify(MessageText.of(env), rules, exclude_example=index)
    fold = index % CHECK_FOLDS
    categories, position = [], 0
    for c in rules.categories:
        mine = [e for j, e in enumerate(c.examples, start=position) if j % CHECK_FOLDS != fold]
        position += len(c.examples)
        categories.append(c.model_copy(update={"examples": mine}))
    without = rules.model_copy(update={"categories": categories})
    return classify(MessageText.of(env), without)


def cmd_check(args: argparse.Namespace, settings: BrokerSettings) -> int:
    rules, version = load_rules(args.file)
    print(f"{args.file}: OK (version {version}): {len(rules.rules)} rules + default, "
          f"{len(rules.categories)} categories, queues: {', '.join(rules.queue_names())}")
    for warning in category_warnings(rules):
        print(f"warning: {warning}")
    return 0


def _parse_ref(value: str) -> Reference:
    kind, sep, ref = value.partition(":")
    if not sep or not ref:
        raise ConfigError(f"--ref {value!r}: expected KIND:VALUE, e.g. order:MH38")
    return Reference(kind=kind, value=ref)


def _made_up(args: argparse.Namespace) -> Envelope:
    at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    attachments = []
    if args.audio:
        attachments.append(Attachment(kind=AttachmentKind.AUDIO, content_type="audio/ogg"))
    if args.attachment:
        attachments.append(Attachment(kind=AttachmentKind.DOCUMENT,
                                      content_type="application/pdf"))
    return Envelope(
        channel=Channel(args.channel), source_id="rules-test", received_at=at,
        text=args.text, subject=args.subject, sender=Sender(), attachments=attachments,
        identity=Identity(identified=bool(args.account), account_id=args.account,
                          tier=args.tier, country=args.country, language=args.language),
        refs=[_parse_ref(r) for r in args.ref],
        case=CaseLink(case_id="C-TEST", action="opened", deprioritised=args.deprioritised))


def cmd_test(args: argparse.Namespace, settings: BrokerSettings) -> int:
    rules, version = load_rules(args.file)
    envelope = _made_up(args)
    routing = route_case(envelope, rules, version)
    found = classify(MessageText.of(envelope), rules).guess
    assert found is not None
    confidence = (f"confidence {found.confidence:.2f}" if not found.fallback else
                  f"fallback: best {found.best} at {found.confidence:.2f} "
                  f"< {rules.min_confidence:g}")
    print(f"category:   {routing.category}  ({confidence})")
    print("keywords:   " + (", ".join(found.keywords) or "none"))
    for n in found.nearest:
        print(f"nearest:    {n.similarity:.2f} {n.category:<12} «{n.example}»")
    print(f"rule:       {routing.rule}")
    print("why:        " + "; ".join(routing.reasons))
    print(f"queue:      {routing.queue}  (topic queue.{routing.queue})")
    print(f"priority:   {routing.priority}")
    print(f"difficulty: {routing.difficulty}")
    print(f"take in charge by: {routing.sla_due_at:%a %Y-%m-%d %H:%M %Z}  "  # type: ignore[str-format]
          f"(calendar {routing.calendar})")
    print(f"resolve by:        {routing.resolution_due_at:%a %Y-%m-%d %H:%M %Z}")  # type: ignore[str-format]
    return 0


@dataclass
class ReplayReport:
    """What a candidate rules file would change on recent cases."""

    cases: int = 0
    moved: Counter[tuple[str, str]] = field(default_factory=Counter)
    rule_changes: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def moved_total(self) -> int:
        return sum(self.moved.values())

    def lines(self) -> list[str]:
        out = [f"{self.cases} case(s) replayed; {self.moved_total} would change queue"]
        for (old, new), n in self.moved.most_common():
            out.append(f"  {old} → {new}: {n}")
        for (old, new), n in self.rule_changes.most_common(20):
            out.append(f"  rule {old} → {new}: {n}")
        return out


async def recent_routed(settings: BrokerSettings, since: datetime, limit: int) -> list[Envelope]:
    """The cases routed since ``since`` (one per case: the message that opened it)."""
    topic = TopicNames(settings.kafka.topic_prefix)(Topic.ROUTED)
    seen: dict[str, Envelope] = {}
    async with consumer(settings.kafka) as client:
        if not await partitions_of(client, topic):
            raise ConfigError(f"topic {topic} does not exist on {settings.kafka.bootstrap}")
        records = await read_records(client, topic, since_ms=int(since.timestamp() * 1000))
    for record in records:
        if record.value is None:
            continue
        try:
            envelope = Envelope.from_bytes(record.value)
        except ValueError:
            continue
        if envelope.routing is None or envelope.routing.follows_case:
            continue
        seen.setdefault(envelope.case.case_id if envelope.case else envelope.id, envelope)
        if len(seen) >= limit:
            break
    return list(seen.values())


async def replay(settings: BrokerSettings, path: str, hours: float, limit: int) -> ReplayReport:
    rules, version = load_rules(path)
    report = ReplayReport()
    since = datetime.now(UTC) - timedelta(hours=hours)
    for envelope in await recent_routed(settings, since, limit):
        before = envelope.routing
        assert before is not None
        after = route_case(envelope, rules, version)
        report.cases += 1
        if after.queue != before.queue:
            report.moved[(before.queue, after.queue)] += 1
        if after.rule != before.rule:
            report.rule_changes[(before.rule, after.rule)] += 1
    return report


def cmd_replay(args: argparse.Namespace, settings: BrokerSettings) -> int:
    settings = with_broker(settings)
    report = asyncio.run(replay(settings, args.file, args.hours, args.limit))
    print("\n".join(report.lines()))
    return 0

