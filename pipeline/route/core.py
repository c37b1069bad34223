"""Route: classify a case and pick its queue, priority and due times by the leads' rules.

Pure functions: the rules are passed in, and every time is computed from the message's
``received_at`` (when the customer wrote), so a replay routes exactly as the first pass did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.envelope import Envelope, Routing
from pipeline.route.calendar import parse_duration_hours
from pipeline.route.classify import (
    CategoryGuess,
    MessageText,
    guess,
    keyword_hit,
    keyword_hits,
)
from pipeline.route.rules import Outcome, RoutingRules, When

__all__ = ["Classification", "MessageText", "classify", "follow_case", "keyword_hit",
           "route_case", "route_message"]


def _hits(keywords: list[str], text: MessageText, tolerance: float) -> list[str]:
    return keyword_hits(keywords, text, tolerance)


@dataclass(frozen=True)
class Classification:
    category: str
    reason: str
    difficulty: str
    guess: CategoryGuess | None = None

    @property
    def confident(self) -> bool:
        return self.guess is not None and not self.guess.fallback


def classify(text: MessageText, rules: RoutingRules, *,
             exclude_example: int | None = None) -> Classification:
    """The category by similarity to the leads' examples and keywords, with a confidence;
    below ``rules.min_confidence`` the fallback ``default_category``."""
    found = guess(text, rules.categories_key(), tolerance=rules.keyword_tolerance,
                  keyword_weight=rules.keyword_weight, min_confidence=rules.min_confidence,
                  fallback=rules.default_category, past=rules.past_key(),
                  classifier=rules.classifier, keyword_odds=rules.keyword_odds,
                  exclude=exclude_example)
    difficulty = next((c.difficulty for c in rules.categories if c.name == found.category),
                      None)
    return Classification(found.category, found.reason(rules.min_confidence),
                          difficulty or rules.default_difficulty, found)


def _any(values: list[str] | None, actual: str | None) -> bool:
    return values is None or (actual is not None
                              and actual.casefold() in {v.casefold() for v in values})


def explain_match(when: When, envelope: Envelope, text: MessageText, category: str,
                  rules: RoutingRules, queue: str) -> list[str] | None:
    """Why every condition of ``when`` holds, or ``None`` when one does not."""
    why: list[str] = []
    identity = envelope.identity
    if when.channel is not None:
        if envelope.channel not in when.channel:
            return None
        why.append(f"channel is {envelope.channel.value}")
    if when.category is not None:
        if category not in when.category:
            return None
        why.append(f"category is {category}")
    if when.keywords is not None:
        hits = _hits(when.keywords, text, rules.keyword_tolerance)
        if not hits:
            return None
        why.append("keywords: " + ", ".join(hits))
    if when.regex is not None:
        matched = [p for p in when.regex if re.search(p, text.raw, re.IGNORECASE)]
        if not matched:
            return None
        why.append("regex: " + ", ".join(matched))
    if when.refs is not None:
        kinds = sorted({r.kind for r in envelope.refs})
        if when.refs is True and not kinds:
            return None
        if when.refs is False and kinds:
            return None
        if isinstance(when.refs, list) and not set(when.refs) & set(kinds):
            return None
        why.append(f"references: {', '.join(kinds) or 'none'}")
    for name, values, actual in (
            ("tier", when.tier, identity.tier if identity else None),
            ("country", when.country, identity.country if identity else None),
            ("language", when.language, _language(envelope))):
        if values is not None:
            if not _any(values, actual):
                return None
            why.append(f"{name} is {actual}")
    flags = (
        ("has_audio", when.has_audio, bool(envelope.audio_attachments)),
        ("has_attachment", when.has_attachment, bool(envelope.attachments)),
        ("deprioritised", when.deprioritised,
         bool(envelope.case and envelope.case.deprioritised)),
    )
    for flag, wanted, present in flags:
        if wanted is not None:
            if wanted != present:
                return None
            why.append(f"{flag} is {str(present).lower()}")
    if when.business_hours is not None:
        calendar_name, calendar = rules.calendar_of(queue)
        open_now = calendar.is_open(envelope.received_at)
        if open_now != when.business_hours:
            return None
        why.append(f"{'within' if open_now else 'outside'} business hours ({calendar_name})")
    return why or ["no condition (matches everything)"]


def _language(envelope: Envelope) -> str | None:
    if envelope.identity is not None and envelope.identity.language:
        return envelope.identity.language
    return next((t.language for t in envelope.transcripts if t.language), None)


def route_case(envelope: Envelope, rules: RoutingRules, version: str | None = None) -> Routing:
    """Category, first matching rule (else the default), queue, priority and due times."""
    text = MessageText.of(envelope)
    classification = classify(text, rules)
    chosen: Outcome = rules.default
    rule_name, why = "default", ["no rule matched"]
    for rule in rules.rules:
        reasons = explain_match(rule.when, envelope, text, classification.category, rules,
                                rule.queue)
        if reasons is not None:
            chosen, rule_name, why = rule, rule.name, reasons
            break
    calendar_name, calendar = rules.calendar_of(chosen.queue)
    difficulty = chosen.difficulty or classification.difficulty
    start = envelope.received_at
    take_hours = parse_duration_hours(chosen.take_in_charge, calendar.hours_per_day)
    solve_hours = parse_duration_hours(rules.difficulties[difficulty], calendar.hours_per_day)
    return Routing(
        queue=chosen.queue, priority=chosen.priority, rule=rule_name,
        sla_due_at=calendar.add_business_hours(start, take_hours),
        resolution_due_at=calendar.add_business_hours(start, solve_hours),
        category=classification.category, category_reason=classification.reason,
        difficulty=difficulty, calendar=calendar_name, reasons=why, rules_version=version)


FALLBACK_REASON = "fallback:"


def follow_case(previous: Routing, version: str | None, envelope: Envelope | None = None,
                rules: RoutingRules | None = None) -> Routing:
    """Routing of a message merged into an already routed case: the case's queue, SLA kept.

    The case keeps the category of its opening message. Only when that one fell back (not
    confident) and the follow-up is classified confidently (``envelope`` and ``rules``
    given) does the case take the follow-up's category: a follow-up can make the category
    surer, never flip a confident one.
    """
    # Shallow: every field kept is immutable, and reasons is replaced (a deep copy was 5 %
    # of route's time, bench/stage_costs.py).
    update: dict[str, object] = {
        "follows_case": True,
        "reasons": [f"merged into a case already routed by rule {previous.rule}"],
        "rules_version": version or previous.rules_version,
    }
    if (envelope is not None and rules is not None
            and (previous.category_reason or "").startswith(FALLBACK_REASON)):
        found = classify(MessageText.of(envelope), rules)
        if found.confident:
            update["category"] = found.category
            update["category_reason"] = f"from a follow-up: {found.reason}"
    return previous.model_copy(update=update)


def route_message(envelope: Envelope, stored: Routing | None, rules: RoutingRules,
                  version: str | None) -> Routing:
    """What route does with a message: a redelivered opening keeps its routing, a merged
    follow-up follows its case, anything else is routed by the rules."""
    if stored is None:
        return route_case(envelope, rules, version)
    if envelope.case is not None and envelope.case.action == "opened":
        return stored
    return follow_case(stored, version, envelope, rules)



REMEMBERED_AT = "remembered_at"
# A followed case's time is refreshed at most this often (each refresh is a table write).
REFRESH_AFTER = timedelta(days=1)


def remember_case(known: dict[str, dict], case_id: str, routing: dict,  # type: ignore[type-arg]
                  at: datetime, now: datetime, *, max_age_days: float,
                  max_cases: int) -> dict[str, dict]:  # type: ignore[type-arg]
    """An account's remembered routings with ``case_id``'s set as of ``at`` (its message's
    time), the cases silent for ``max_age_days`` forgotten, then the oldest beyond
    ``max_cases``. Entries written before times were kept have none and only go by count."""
    horizon = (now - timedelta(days=max_age_days)).isoformat()
    kept = {cid: value for cid, value in known.items()
            if cid != case_id and value.get(REMEMBERED_AT, horizon) >= horizon}
    kept[case_id] = {**routing, REMEMBERED_AT: at.isoformat()}  # last: the most recent
    for old in list(kept)[: max(0, len(kept) - max_cases)]:
        del kept[old]
    return kept


def remembered_routing(stored: dict) -> Routing:  # type: ignore[type-arg]
    """The routing of a remembered case, without the table's own bookkeeping: the envelope
    model keeps unknown fields, so ``remembered_at`` would otherwise travel on the case."""
    return Routing.model_validate({k: v for k, v in stored.items() if k != REMEMBERED_AT})


def needs_refresh(stored: dict, at: datetime) -> bool:  # type: ignore[type-arg]
    """Whether a followed case's remembered time is old enough to be moved to ``at``."""
    remembered = stored.get(REMEMBERED_AT)
    return remembered is None or datetime.fromisoformat(remembered) + REFRESH_AFTER < at
