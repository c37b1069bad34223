"""The routing rules file (``config/routing.yaml``) that support leads edit: model and loader.

Errors name the file, the line and the key (``routing.yaml:42 rules.3.queue: field
required``), so a lead can fix a broken file without reading a traceback.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.configfile import YamlDocument, parse_yaml, validate
from pipeline.envelope import Channel
from pipeline.errors import ConfigError
from pipeline.route.calendar import BusinessCalendar, parse_duration_hours

QUEUE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,60}$")


class _Strict(BaseModel):
    # A misspelt key ("chanel:") is an error, not a silently ignored condition.
    model_config = ConfigDict(extra="forbid")


class Calendar(BusinessCalendar, _Strict):
    @field_validator("opens", "closes", mode="before")
    @classmethod
    def _quoted_time(cls, value: Any) -> Any:
        if isinstance(value, int):  # YAML reads 08:00 unquoted as sexagesimal minutes
            raise ValueError('write times in quotes, e.g. "08:00"')
        return value


class Category(_Strict):
    """A category: example messages written by the leads, and words that reveal it
    (accent- and case-insensitive, typo-tolerant). At least one of the two."""

    name: str
    keywords: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    difficulty: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if not self.keywords and not self.examples:
            raise ValueError(f"category {self.name!r}: give examples or keywords (or both)")


class PastMessage(_Strict):
    """A message a customer sent in the past and the category a lead gave its case."""

    category: str
    text: str


class PastMessages(_Strict):
    """The file ``examples_file`` names: past messages your leads labelled."""

    messages: list[PastMessage] = Field(default_factory=list)


class Queue(_Strict):
    calendar: str = "default"
    description: str | None = None


class When(_Strict):
    """Conditions of a rule: all given ones must hold; a list holds when any item does."""

    channel: list[Channel] | None = None
    category: list[str] | None = None
    keywords: list[str] | None = None
    regex: list[str] | None = None
    # true: any reference; a list: one of these kinds (order, invoice, contract, url).
    refs: bool | list[str] | None = None
    tier: list[str] | None = None
    country: list[str] | None = None
    language: list[str] | None = None
    has_audio: bool | None = None
    has_attachment: bool | None = None
    deprioritised: bool | None = None
    business_hours: bool | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or []:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return value

    @field_validator("channel", "category", "keywords", "regex", "tier", "country", "language",
                     mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Outcome(_Strict):
    """Where a matching case goes and how fast it must be handled."""

    queue: str
    priority: str = "normal"
    # Business time to take the case in charge: "30min", "4h", "2d" (days of the calendar).
    take_in_charge: str = "8h"
    # Overrides the category's difficulty (which sets the resolution due time).
    difficulty: str | None = None

    @field_validator("queue")
    @classmethod
    def _topic_safe(cls, value: str) -> str:
        if not QUEUE_NAME.match(value):
            raise ValueError("queue names are lower-case letters, digits, - and _ "
                             "(they become the topic queue.<name>)")
        return value


class Rule(Outcome):
    name: str
    when: When = Field(default_factory=When)


class RoutingRules(_Strict):
    """The whole file."""

    # rapidfuzz ratio (0-100) above which a word with a typo still counts as the keyword.
    keyword_tolerance: float = Field(85.0, ge=50, le=100)
    calendars: dict[str, Calendar] = Field(default_factory=lambda: {"default": Calendar()})
    # Resolution budget per difficulty level, in business time ("6h", "3d").
    difficulties: dict[str, str] = Field(default_factory=lambda: {
        "simple": "6h", "medium": "3d", "difficult": "5d", "very_difficult": "14d"})
    default_difficulty: str = "medium"
    categories: list[Category] = Field(default_factory=list)
    # The fallback: a message whose best category is below min_confidence goes here.
    default_category: str = "other"
    # Classification (pipeline/route/classify.py): confidence (0-1) below which the message
    # falls back to default_category, and how much each keyword found (up to two) adds to a
    # category's similarity to its examples (cosine, 0-1).
    min_confidence: float = Field(0.4, ge=0, le=1)
    keyword_weight: float = Field(0.15, ge=0, le=1)
    # "nearest": the three nearest examples of each category and keyword_weight;
    # "linear": a logistic regression learnt from the examples and the past messages, with
    # keywords as features (pipeline/route/classify.py).
    classifier: Literal["nearest", "linear"] = "nearest"
    # linear: each keyword found (up to two per category) multiplies its category's odds by
    # this (1: keywords are only short messages the model learnt from).
    keyword_odds: float = Field(1.0, ge=1, le=1000)
    # A YAML file of past messages your leads labelled (``messages: [{category, text}]``),
    # relative to this file: the classifier learns from them beside the examples.
    examples_file: str | None = None
    # Filled from examples_file when the file is loaded (may also be written inline).
    past_messages: list[PastMessage] = Field(default_factory=list)
    queues: dict[str, Queue] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    default: Outcome

    def calendar_of(self, queue: str) -> tuple[str, BusinessCalendar]:
        name = self.queues[queue].calendar if queue in self.queues else "default"
        if name not in self.calendars:
            name = next(iter(self.calendars))
        return name, self.calendars[name]

    def categories_key(self) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
        """Every category's examples and keywords, hashable (the classifier is cached by
        them)."""
        return tuple((c.name, tuple(c.examples), tuple(c.keywords)) for c in self.categories)

    def past_key(self) -> tuple[tuple[str, str], ...]:
        return tuple((m.category, m.text) for m in self.past_messages)

    def queue_names(self) -> list[str]:
        names = [self.default.queue, *(r.queue for r in self.rules), *self.queues]
        return list(dict.fromkeys(names))


def _problems(rules: RoutingRules) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-references a schema cannot check: unknown categories, calendars, levels."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    categories = {c.name for c in rules.categories} | {rules.default_category}
    seen: set[str] = set()
    for i, rule in enumerate(rules.rules):
        if rule.name in seen:
            found.append((("rules", i, "name"), f"duplicate rule name {rule.name!r}"))
        seen.add(rule.name)
        for name in (rule.when.category or []):
            if name not in categories:
                found.append((("rules", i, "when", "category"),
                              f"unknown category {name!r}; known: {', '.join(sorted(categories))}"))
    for key, outcome in [*((("rules", i), r) for i, r in enumerate(rules.rules)),
                         (("default",), rules.default)]:
        if outcome.difficulty and outcome.difficulty not in rules.difficulties:
            found.append(((*key, "difficulty"), f"unknown difficulty {outcome.difficulty!r}"))
        try:
            parse_duration_hours(outcome.take_in_charge, 8)
        except ValueError as exc:
            found.append(((*key, "take_in_charge"), str(exc)))
    for i, category in enumerate(rules.categories):
        if category.difficulty and category.difficulty not in rules.difficulties:
            found.append((("categories", i, "difficulty"),
                          f"unknown difficulty {category.difficulty!r}"))
    for name, queue in rules.queues.items():
        if queue.calendar not in rules.calendars:
            found.append((("queues", name, "calendar"), f"unknown calendar {queue.calendar!r}"))
    for level, budget in rules.difficulties.items():
        try:
            parse_duration_hours(budget, 8)
        except ValueError as exc:
            found.append((("difficulties", level), str(exc)))
    if rules.default_difficulty not in rules.difficulties:
        found.append((("default_difficulty",), f"unknown difficulty {rules.default_difficulty!r}"))
    if not rules.calendars:
        found.append((("calendars",), "at least one calendar is needed"))
    unknown = sorted({m.category for m in rules.past_messages} - categories)
    if unknown:
        found.append((("examples_file",) if rules.examples_file else ("past_messages",),
                      f"past messages labelled with unknown categories: {', '.join(unknown)}"))
    return found


def _past_messages(rules: RoutingRules, doc: YamlDocument, path: str) -> RoutingRules:
    """The rules with the past messages of ``examples_file`` (relative to ``path``)."""
    if rules.examples_file is None:
        return rules
    where = Path(path).parent / rules.examples_file
    line = doc.line_of(("examples_file",)) or 1
    try:
        text = where.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}:{line} examples_file: cannot read {where}: "
                          f"{exc.strerror or exc}") from exc
    past_doc = parse_yaml(text, str(where))
    past = validate(PastMessages, past_doc)
    return rules.model_copy(update={"past_messages": [*rules.past_messages, *past.messages]})


def parse_rules(text: str, path: str = "<rules>") -> RoutingRules:
    """Validate a rules file's text; ``ConfigError`` lists every problem with its line."""
    doc: YamlDocument = parse_yaml(text, path)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}:1: the rules file must be a mapping (calendars, rules, default)")
    try:
        rules = validate(RoutingRules, doc)
    except ValueError as exc:  # a check in model_post_init surfaces as a plain ValueError
        raise ConfigError(f"{path}: {exc}") from exc
    rules = _past_messages(rules, doc, path)
    problems = _problems(rules)
    if problems:
        raise ConfigError("\n".join(
            f"{path}:{doc.line_of(loc) or 1} {'.'.join(map(str, loc))}: {msg}"
            for loc, msg in problems))
    return rules


def load_rules(path: str | Path) -> tuple[RoutingRules, str]:
    """Read and validate a rules file; return the rules and a version (sha256 prefix)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    text = data.decode("utf-8", "replace")
    rules = parse_rules(text, str(path))
    digest = hashlib.sha256(data)
    for message in rules.past_messages:  # the version changes with the past messages too
        digest.update(f"\0{message.category}\0{message.text}".encode())
    return rules, digest.hexdigest()[:12]
