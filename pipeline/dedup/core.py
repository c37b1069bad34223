"""Dedup: find the open case a message belongs to, or open one. Pure functions, no clock.

State is per customer account (``AccountCases``): every decision reads and writes only the
account's own open cases, so the cost of a message does not depend on how many cases the
other customers have. The agent keeps one ``AccountCases`` per account in a faust Table.

A merge needs evidence that the message is about the same thing as the case. Order of the
tests, strongest evidence first: redelivery of a message already in a case, email thread
(In-Reply-To / References) or case tag, a shared business reference, then similarity on
informative words (``similarity``). Being in the same chat or WhatsApp conversation within
the quiet period lowers the similarity bar but never replaces it: a new question a minute
later opens its own case. A message that says nothing of its own ("ça ne marche toujours
pas", "merci !", "??") cannot be a new request: it follows the sender's latest case.
Otherwise the message opens a case, deprioritised when the customer already has one open
("one question at a time").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from rapidfuzz import fuzz

from pipeline.caseevents import CaseEvent
from pipeline.dedup import similarity as sim
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.refs import ref_key
from pipeline.dedup.similarity import STOP_WORDS
from pipeline.envelope import CaseLink, Channel, Envelope, Reference
from pipeline.textnorm import fold, words

_REPLY_PREFIX = re.compile(r"^\s*((re|tr|fwd?|aw)\s*:\s*)+", re.IGNORECASE)
CASE_TAG = re.compile(r"\b(C-[0-9A-F]{10})\b", re.IGNORECASE)
# Channels where a customer talks in several short messages (and calls again to add one).
CONVERSATION_CHANNELS = (Channel.CHAT, Channel.WHATSAPP, Channel.VOICEMAIL)

__all__ = ["STOP_WORDS", "AccountCases", "CaseEvent", "Decision", "OpenCase", "assign"]


class OpenCase(BaseModel):
    """What dedup remembers of one case of a customer."""

    case_id: str
    opened_at: datetime
    last_activity: datetime
    channel: Channel
    sender: str
    subject: str = ""
    # Folded meaningful words of the case's subject and first messages (capped): what new
    # messages are compared with. It stops growing after ``representative_messages``, so a
    # long case does not turn into a catch-all.
    summary: str = ""
    refs: list[str] = Field(default_factory=list)
    message_ids: list[str] = Field(default_factory=list)
    # Email Message-IDs and conversation ids that a reply can point at.
    thread_ids: list[str] = Field(default_factory=list)
    opening_message_id: str | None = None
    # The directory's employee who opened it: the same person on another channel.
    employee_id: str | None = None
    # That employee's first name, folded: a colleague's "Bastien vous a écrit ce matin"
    # points at this case.
    employee_first_name: str | None = None
    # Opened by a question ("comment …?") rather than a problem report: a status follow-up
    # ("ça ne marche toujours pas") is about the latter.
    opened_by_question: bool = False
    message_count: int = 0
    deprioritised: bool = False


class AccountCases(BaseModel):
    """One customer's open cases, and a few recently closed ones (for "reopened")."""

    open: list[OpenCase] = Field(default_factory=list)
    closed: list[OpenCase] = Field(default_factory=list)
    # Partition of messages.accepted this account's records arrive on: the periodic sweep of
    # idle accounts only rewrites entries of the partition it is processing (co-partitioned).
    partition: int | None = None

    def find(self, case_id: str) -> OpenCase | None:
        return next((c for c in self.open if c.case_id == case_id), None)


@dataclass(frozen=True)
class Decision:
    """The case a message went to, and the account's cases after it."""

    cases: AccountCases
    link: CaseLink
    case: OpenCase
    aged_out: int = 0
    evicted: int = 0


def case_id_for(message_id: str) -> str:
    """Derived from the opening message: a redelivery opens the very same case id."""
    return "C-" + hashlib.sha1(message_id.encode()).hexdigest()[:10].upper()


def account_key(envelope: Envelope, record_key: str | None) -> str:
    """The table key: the identified account, else the record's key (the sender)."""
    if envelope.identity is not None and envelope.identity.account_id:
        return envelope.identity.account_id
    return record_key or f"sender:{envelope.sender_key}"


def summary_words(envelope: Envelope) -> list[str]:
    """What the message says: subject, text without signature, transcripts, minus stop
    words and the sender's own names."""
    return sim.subject_words(envelope)


def _thread_ids(envelope: Envelope) -> list[str]:
    ids = []
    message_id = envelope.headers.get("message-id")
    if message_id:
        ids.append(_bare(message_id))
    if envelope.channel is Channel.EMAIL:
        ids.append(_bare(envelope.source_id))
    if envelope.thread.conversation_id:
        ids.append(f"conv:{envelope.thread.conversation_id}")
    return ids


def _bare(message_id: str) -> str:
    return message_id.strip().strip("<>").lower()


def _age_out(cases: AccountCases, now: datetime, config: DedupConfig) -> tuple[AccountCases, int]:
    limit = now - timedelta(days=config.open_case_max_age_days)
    keep = [c for c in cases.open if c.last_activity >= limit]
    closed = [c for c in cases.closed if c.last_activity >= limit]
    return (AccountCases(open=keep, closed=closed, partition=cases.partition),
            len(cases.open) - len(keep))


def age_out(cases: AccountCases, now: datetime, config: DedupConfig) -> tuple[AccountCases, int]:
    """The account's cases without those idle longer than the window, and how many went."""
    return _age_out(cases, now, config)


def _by_thread(cases: AccountCases, envelope: Envelope) -> tuple[OpenCase, str] | None:
    # A chat window's conversation id is not a thread: customers ask several things in one
    # window. It only lowers the similarity bar (``_conversations``).
    pointed = [_bare(x) for x in [envelope.thread.in_reply_to, *envelope.thread.references] if x]
    for case in sorted(cases.open, key=lambda c: c.last_activity, reverse=True):
        hit = next((p for p in pointed if p in case.thread_ids), None)
        if hit:
            return case, f"reply to message {hit}"
    for case in sorted(cases.open, key=lambda c: c.last_activity, reverse=True):
        if _same_subject(case, envelope):
            return case, f"reply by subject {case.subject!r} (no In-Reply-To header)"
    tags = [envelope.thread.case_tag] if envelope.thread.case_tag else []
    tags += CASE_TAG.findall(envelope.subject or "")
    for tag in tags:
        tagged = cases.find(tag.upper())
        if tagged is not None:
            return tagged, f"case tag {tagged.case_id} in the subject"
    return None


def _by_reference(cases: AccountCases, refs: list[str]) -> tuple[OpenCase, str] | None:
    for case in sorted(cases.open, key=lambda c: c.last_activity, reverse=True):
        shared = [r for r in refs if r in case.refs]
        if shared:
            return case, "shared reference " + ", ".join(shared)
    return None


def _conversations(cases: AccountCases, envelope: Envelope,
                   config: DedupConfig) -> dict[str, float]:
    """Cases this message continues the conversation of, with the minutes since: the same
    person (sender address, or directory employee across chat, WhatsApp and voicemail) or
    chat conversation id, within the quiet period."""
    if envelope.channel not in CONVERSATION_CHANNELS:
        return {}
    quiet = timedelta(minutes=config.quiet_period_minutes)
    conv = f"conv:{envelope.thread.conversation_id}" if envelope.thread.conversation_id else None
    found = {}
    for case in cases.open:
        gap = envelope.received_at - case.last_activity
        same = (case.sender == envelope.sender_key
                or (case.channel in CONVERSATION_CHANNELS and _same_person(case, envelope))
                or (conv is not None and conv in case.thread_ids))
        if same and timedelta(0) <= gap <= quiet:
            found[case.case_id] = gap.total_seconds() / 60
    return found


def scorer(name: str) -> Callable[..., float]:
    return getattr(fuzz, name)  # type: ignore[no-any-return]


def _by_legacy_scorer(cases: AccountCases, text_words: list[str],
                      config: DedupConfig) -> tuple[OpenCase, float, str] | None:
    """A rapidfuzz scorer over the whole summary (the rule before issue 14, kept for
    comparison: WRatio merges on one shared word once the summary is 1.5× the message)."""
    if len(text_words) < config.min_fuzzy_words:
        return None
    score_of = scorer(config.scorer)
    text = " ".join(text_words)
    best: tuple[OpenCase, float] | None = None
    for case in cases.open:
        if not case.summary:
            continue
        score = float(score_of(text, case.summary))
        if best is None or score > best[1]:
            best = (case, score)
    if best is None or best[1] < config.threshold:
        return None
    case, score = best
    common = sorted(set(text_words) & set(case.summary.split()))[:8]
    return case, round(score, 1), (f"{config.scorer} {score:.1f} ≥ {config.threshold:g} "
                                   f"on words: {' '.join(common)}")


def _by_similarity(cases: AccountCases, envelope: Envelope, text_words: list[str],
                   conversation: dict[str, float], config: DedupConfig) -> tuple[OpenCase, float, str] | None:
    """The open case sharing the most informative content, if enough: at least
    ``min_shared_weight`` in common and ``threshold`` % of the smaller content; within the
    same conversation the bar is ``conversation_*`` (lower, never zero)."""
    message_stems = sim.stems(text_words)
    # A question or a change of subject brings something new: the conversation does not
    # lower its bar ("btw could you add …" a minute after a problem report).
    full_bar = sim.asks_or_changes_subject(envelope) if conversation else None
    best: tuple[OpenCase, sim.Similarity, float | None] | None = None
    for case in cases.open:
        found = sim.similarity(message_stems, sim.stems(case.summary.split()))
        minutes = None if full_bar else conversation.get(case.case_id)
        threshold, minimum = ((config.conversation_threshold,
                               config.conversation_min_shared_weight) if minutes is not None
                              else (config.threshold, config.min_shared_weight))
        if found.score < threshold or found.shared_weight < minimum:
            continue
        # Beyond the words every request of this product uses (customer, card, terminal,
        # stock: common in support messages or in everyday language), something rare.
        if minutes is None and found.distinctive_weight(config.distinctive_word_weight) < (
                config.min_distinctive_weight):
            continue
        if best is None or (found.shared_weight, found.score) > (best[1].shared_weight,
                                                                 best[1].score):
            best = (case, found, minutes)
    if best is None:
        return None
    case, found, minutes = best
    spelled = {sim.stem(w): w for w in reversed(text_words)}
    why = f"similar: {found.describe(spelled)}; shared weight {found.shared_weight:g}"
    if minutes is not None:
        why += (f" (same conversation, {minutes:.0f} min after: "
                f"bar {config.conversation_threshold:g}% / {config.conversation_min_shared_weight:g})")
    elif full_bar and case.case_id in conversation:
        why += (f" (same conversation but {full_bar}: full bar {config.threshold:g}% / "
                f"{config.min_shared_weight:g})")
    else:
        why += f" (bar {config.threshold:g}% / {config.min_shared_weight:g})"
    return case, found.score, why


def _same_subject(case: OpenCase, envelope: Envelope) -> bool:
    """A mail answering by subject ("RE: Barcode scanner not working") when the client
    dropped the In-Reply-To header: the same informative subject as the case's."""
    if envelope.channel is not Channel.EMAIL or not case.subject or not envelope.subject:
        return False
    if not _REPLY_PREFIX.match(envelope.subject):
        return False
    mine, theirs = (sim.stems(sim.subject_line_words(x)) for x in (envelope.subject,
                                                                  case.subject))
    return bool(mine) and mine == theirs and sim.content_weight(mine) >= 0.5


def _by_continuation(cases: AccountCases, envelope: Envelope, message_stems: set[str],
                     config: DedupConfig) -> tuple[OpenCase, sim.Similarity, str] | None:
    """The customer says it goes on ("toujours", "still", "re …") and shares at least one
    informative word with one of their recent cases: that case."""
    # Only a short message says it goes on: in a long mail "encore une fois" or "again"
    # is part of describing a request of its own.
    if len(summary_words(envelope)) > config.continuation_max_words:
        return None
    text = sim.message_text(envelope)
    marker = sim.CONTINUATION_MARKERS.search(text)
    if marker is None:
        return None
    horizon = envelope.received_at - timedelta(hours=config.continuation_hours)
    best: tuple[OpenCase, sim.Similarity] | None = None
    for case in cases.open:
        if not (case.sender == envelope.sender_key or _same_person(case, envelope)):
            continue
        if not horizon <= case.last_activity <= envelope.received_at:
            continue
        found = sim.similarity(message_stems, sim.stems(case.summary.split()))
        if found.shared_weight < config.continuation_min_shared_weight:
            continue
        if best is None or (found.shared_weight, case.last_activity) > (
                best[1].shared_weight, best[0].last_activity):
            best = (case, found)
    if best is None:
        return None
    case, found = best
    spelled = {sim.stem(w): w for w in reversed(summary_words(envelope))}
    return case, found, (f"says it goes on ({marker.group(0).strip()!r}) and shares "
                         f"{found.describe(spelled)} with the sender's case active within "
                         f"{config.continuation_hours:g} h; shared weight "
                         f"{found.shared_weight:g} ≥ {config.continuation_min_shared_weight:g}")


def _by_mention(cases: AccountCases, envelope: Envelope, config: DedupConfig
                ) -> tuple[OpenCase, str] | None:
    """A message that points at an earlier one: a colleague's ("je suis la collègue de
    Bastien, il vous a écrit ce matin", "following Fiona's email") or the sender's own on
    another channel ("j'ai téléphoné ce matin", "je vous ai envoyé un mail"): the latest case
    that person opened, active within ``follow_up_hours``."""
    text = sim.message_text(envelope)
    if sim.NEW_SUBJECT_MARKERS.search(text):
        return None
    horizon = envelope.received_at - timedelta(hours=config.follow_up_hours)
    recent = [c for c in cases.open if horizon <= c.last_activity <= envelope.received_at]
    if not recent:
        return None
    if (said := sim.COLLEAGUE_REFERENCE.search(text)) is not None:
        words = set(text.split())
        named = [c for c in recent if c.employee_first_name and c.employee_first_name in words
                 and not _same_person(c, envelope)]
        if named:
            case = max(named, key=lambda c: c.last_activity)
            return case, (f"names {case.employee_first_name!r}, who opened it, and points at "
                          f"their message ({said.group(0)!r})")
    if (said := sim.SELF_REFERENCE.search(text)) is not None:
        own = _own_recent(cases, envelope, {}, config.follow_up_hours)
        if own:
            case = max(own, key=lambda c: c.last_activity)
            return case, (f"points at the sender's own earlier message ({said.group(0)!r}): "
                          f"their latest case, on {case.channel.value}")
    return None


def _by_resolution(cases: AccountCases, envelope: Envelope, message_stems: set[str],
                   conversation: dict[str, float], config: DedupConfig
                   ) -> tuple[OpenCase, str] | None:
    """A short message saying a problem is solved or an answer found ("ça remarche, merci",
    "found the loyalty thing, thanks") closes the loop on one of the sender's recent cases:
    the one it shares an informative word with, else the latest problem report when it
    says something works again, else the latest case."""
    if len(summary_words(envelope)) > config.continuation_max_words:
        return None
    text = sim.message_text(envelope)
    marker = sim.RESOLVED_MARKERS.search(text)
    if marker is None or sim.RESOLVED_BUT.search(text) or sim.NEW_SUBJECT_MARKERS.search(text):
        return None
    if sim.NOT_RESOLVED.search(text):  # "ça ne marche pas", "still not working"
        return None
    if sim.QUESTION_OPENINGS.match(text):  # "c'est où qu'on règle …": a new question
        return None
    own = _own_recent(cases, envelope, conversation, config.follow_up_hours)
    if not own:
        return None
    shared = [(sim.similarity(message_stems, sim.stems(c.summary.split())), c) for c in own]
    sharing = [(found, c) for found, c in shared
               if found.shared_weight >= config.continuation_min_shared_weight]
    if sharing:
        found, case = max(sharing, key=lambda fc: (fc[0].shared_weight, fc[1].last_activity))
        spelled = {sim.stem(w): w for w in reversed(summary_words(envelope))}
        which = f"the case it shares {found.describe(spelled)} with"
    else:
        # Something working again is about a problem the customer reported; an answer found
        # is about a question they asked.
        reported = [c for c in own if not c.opened_by_question]
        asked = [c for c in own if c.opened_by_question]
        if sim.WORKS_AGAIN.search(text) and reported:
            pool, which = reported, "the sender's problem report"
        elif sim.ANSWER_FOUND.search(text) and asked:
            pool, which = asked, "the sender's question"
        else:
            pool, which = own, "the sender's case"
        if len(pool) > 1:
            return None  # which one is a guess: the rules after this one decide
        case = pool[0]
    hours = (envelope.received_at - case.last_activity).total_seconds() / 3600
    return case, (f"says it is solved ({marker.group(0)!r}): closes the loop on {which}, "
                  f"active {hours:.1f} h before")


def _by_follow_up(cases: AccountCases, envelope: Envelope, message_stems: set[str],
                  conversation: dict[str, float], config: DedupConfig
                  ) -> tuple[OpenCase, str] | None:
    """A message with nothing of its own to say follows the sender's latest case."""
    said = sim.content_weight(message_stems)
    if said > config.content_free_weight:
        return None
    own = _own_recent(cases, envelope, conversation, config.follow_up_hours)
    if not own:
        return None
    status = sim.STATUS_MARKERS.search(sim.message_text(envelope))
    reported = [c for c in own if not c.opened_by_question]
    case = max(reported if status and reported else own, key=lambda c: c.last_activity)
    hours = (envelope.received_at - case.last_activity).total_seconds() / 3600
    words_ = " ".join(sorted(message_stems)) or "none"
    return case, (f"says nothing of its own (informative weight {said:.2f} ≤ "
                  f"{config.content_free_weight:g}; words: {words_}): follows the sender's "
                  f"latest {'problem report' if status and reported else 'case'}, active "
                  f"{hours:.1f} h before")


def _by_conversation(cases: AccountCases, envelope: Envelope, message_stems: set[str],
                     conversation: dict[str, float], config: DedupConfig
                     ) -> tuple[OpenCase, str] | None:
    """A short statement in the same conversation, neither a question nor a new subject,
    goes on with what the customer was saying (the conversation's latest case)."""
    if not conversation:
        return None
    if (why_not := sim.opens_new_subject(envelope, message_stems,
                                         config.new_subject_weight)) is not None:
        del why_not  # a new request: it opens its own case (recorded there as "new")
        return None
    case_id, minutes = min(conversation.items(), key=lambda kv: kv[1])
    case = cases.find(case_id)
    assert case is not None
    return case, (f"goes on with the same conversation ({case.channel.value}) "
                  f"{minutes:.0f} min later: no question, no change of subject, no request "
                  f"of its own")


def _by_single_case(cases: AccountCases, envelope: Envelope, message_stems: set[str],
                    keys: list[str], config: DedupConfig) -> tuple[OpenCase, str] | None:
    """A short message while the customer has exactly one case active: that case.

    A customer writing a few words ("still kicking us out", "c'est inclus dans mon forfait
    ?") while one request of theirs is being handled is, far more often than not, talking
    about it. Not when the message names a reference the case does not have (another order,
    another invoice), not when it says it changes subject ("autre chose", "btw"), not a
    mail opening a thread of its own (a subject that is not a reply).
    """
    if config.single_case_hours <= 0:
        return None
    said = sim.content_weight(message_stems)
    if said > config.single_case_max_weight:
        return None
    if envelope.channel is Channel.EMAIL and envelope.subject and not _REPLY_PREFIX.match(
            envelope.subject):
        return None
    text = sim.message_text(envelope)
    if sim.NEW_SUBJECT_MARKERS.search(text) or sim.NEW_THING_OPENING.match(text):
        return None
    horizon = envelope.received_at - timedelta(hours=config.single_case_hours)
    active = [c for c in cases.open if horizon <= c.last_activity <= envelope.received_at]
    if len(active) != 1:
        return None
    case = active[0]
    if any(k not in case.refs for k in keys):
        return None
    hours = (envelope.received_at - case.last_activity).total_seconds() / 3600
    return case, (f"short (informative weight {said:.2f} ≤ {config.single_case_max_weight:g}) "
                  f"while the customer has one case active within "
                  f"{config.single_case_hours:g} h ({case.case_id}, {hours:.1f} h before), "
                  f"no other reference, no change of subject")


def _first_name(envelope: Envelope) -> str | None:
    words = fold(envelope.identity.employee_name or "").split() if envelope.identity else []
    return words[0] if words and len(words[0]) >= 3 else None


def _own_recent(cases: AccountCases, envelope: Envelope, conversation: dict[str, float],
                hours: float) -> list[OpenCase]:
    """The sender's cases (same sender, same person, or this conversation) active within
    ``hours`` before the message."""
    horizon = envelope.received_at - timedelta(hours=hours)
    return [c for c in cases.open
            if (c.case_id in conversation or c.sender == envelope.sender_key
                or _same_person(c, envelope))
            and horizon <= c.last_activity <= envelope.received_at]


def _same_person(case: OpenCase, envelope: Envelope) -> bool:
    """The same employee on another channel (WhatsApp then voicemail from one phone)."""
    identity = envelope.identity
    return bool(identity and identity.employee_id and case.employee_id == identity.employee_id)


def _merge_into(case: OpenCase, envelope: Envelope, refs: list[str], text_words: list[str],
                config: DedupConfig) -> OpenCase:
    merged = case.model_copy(deep=True)
    merged.message_ids = (merged.message_ids + [envelope.id])[-config.max_message_ids_per_case:]
    merged.message_count += 1
    merged.last_activity = max(merged.last_activity, envelope.received_at)
    merged.refs += [r for r in refs if r not in merged.refs]
    merged.thread_ids += [t for t in _thread_ids(envelope) if t not in merged.thread_ids]
    if merged.message_count <= config.representative_messages:
        known = set(merged.summary.split())
        extra = [w for w in text_words if w not in known]
        merged.summary = _capped(" ".join([merged.summary, *extra]), config)
    return merged


def _capped(summary: str, config: DedupConfig) -> str:
    """At most ``summary_chars``, cut at a word boundary (half a word is another word)."""
    summary = summary.strip()
    if len(summary) <= config.summary_chars:
        return summary
    return summary[:config.summary_chars].rsplit(" ", 1)[0]


def _link(case: OpenCase, action: Literal["opened", "merged"], matched_by: str,
          evidence: list[str], score: float | None, others: list[str]) -> CaseLink:
    return CaseLink(case_id=case.case_id, action=action, score=score, evidence=evidence,
                    deprioritised=case.deprioritised, matched_by=matched_by,
                    opened_at=case.opened_at, message_count=case.message_count,
                    other_open_cases=others)


def assign(cases: AccountCases, envelope: Envelope, refs: list[Reference],
           config: DedupConfig, now: datetime) -> Decision:
    """The case ``envelope`` opens or joins among its customer's ``cases``."""
    for case in cases.open + cases.closed:
        if envelope.id in case.message_ids:
            action: Literal["opened", "merged"] = (
                "opened" if case.opening_message_id == envelope.id else "merged")
            others = [c.case_id for c in cases.open if c.case_id != case.case_id]
            return Decision(cases, _link(case, action, "redelivery",
                                         ["message already recorded in this case"], None,
                                         others), case)

    current, aged_out = _age_out(cases, now, config)
    keys = [ref_key(r) for r in refs]
    text_words = summary_words(envelope)

    message_stems = sim.stems(text_words)
    conversation = _conversations(current, envelope, config)

    found: tuple[OpenCase, float | None, str, str] | None = None
    if (hit := _by_thread(current, envelope)) is not None:
        found = (hit[0], 100.0, "thread", hit[1])
    elif (hit := _by_reference(current, keys)) is not None:
        found = (hit[0], 100.0, "reference", hit[1])
    elif config.scorer != "informative":
        if (fuzzy := _by_legacy_scorer(current, text_words, config)) is not None:
            found = (fuzzy[0], fuzzy[1], "fuzzy", fuzzy[2])
    elif (similar := _by_similarity(current, envelope, text_words, conversation,
                                               config)) is not None:
        found = (similar[0], similar[1], "fuzzy", similar[2])
    elif (hit := _by_mention(current, envelope, config)) is not None:
        found = (hit[0], None, "mention", hit[1])
    elif (cont := _by_continuation(current, envelope, message_stems, config)) is not None:
        found = (cont[0], cont[1].score, "continuation", cont[2])
    elif (hit := _by_resolution(current, envelope, message_stems, conversation,
                                config)) is not None:
        found = (hit[0], None, "resolution", hit[1])
    elif (hit := _by_follow_up(current, envelope, message_stems, conversation,
                               config)) is not None:
        found = (hit[0], None, "follow-up", hit[1])
    elif (hit := _by_conversation(current, envelope, message_stems, conversation,
                                  config)) is not None:
        found = (hit[0], None, "conversation", hit[1])
    elif (hit := _by_single_case(current, envelope, message_stems, keys, config)) is not None:
        found = (hit[0], None, "single-case", hit[1])

    if found is not None:
        target, score, how, why = found
        merged = _merge_into(target, envelope, keys, text_words, config)
        current.open = [merged if c.case_id == target.case_id else c for c in current.open]
        others = [c.case_id for c in current.open if c.case_id != merged.case_id]
        return Decision(current, _link(merged, "merged", how, [why], score, others), merged,
                        aged_out)

    others = [c.case_id for c in current.open]
    case = OpenCase(
        case_id=case_id_for(envelope.id), opened_at=envelope.received_at,
        last_activity=envelope.received_at, channel=envelope.channel,
        sender=envelope.sender_key, subject=(envelope.subject or "")[:200],
        employee_id=envelope.identity.employee_id if envelope.identity else None,
        employee_first_name=_first_name(envelope),
        summary=_capped(" ".join(text_words), config), refs=keys,
        message_ids=[envelope.id], thread_ids=_thread_ids(envelope),
        opening_message_id=envelope.id, message_count=1, deprioritised=bool(others),
        opened_by_question=sim.is_question(envelope))
    evidence = ["no open case of this customer matched"]
    if others:
        evidence.append(f"customer already has {len(others)} open case(s): "
                        + ", ".join(others[:5]) + " (one question at a time)")
    current.open.append(case)
    evicted = 0
    if len(current.open) > config.max_open_cases_per_account:
        current.open.sort(key=lambda c: c.last_activity)
        evicted = len(current.open) - config.max_open_cases_per_account
        current.open = current.open[evicted:]
    return Decision(current, _link(case, "opened", "new", evidence, None, others), case,
                    aged_out, evicted)


def apply_event(cases: AccountCases, event: CaseEvent, config: DedupConfig,
                now: datetime) -> AccountCases:
    """The account's cases after a helpdesk event (closed, reopened, merged by hand)."""
    result = cases.model_copy(deep=True)
    case = result.find(event.case_id)
    if event.event == "closed":
        if case is not None:
            result.open.remove(case)
            kept = [c for c in result.closed if c.case_id != case.case_id] + [case]
            limit = config.remember_closed_cases
            result.closed = kept[-limit:] if limit else []
        return result
    if event.event == "reopened":
        if case is not None:
            return result
        old = next((c for c in result.closed if c.case_id == event.case_id), None)
        at = event.at or now
        if old is not None:
            result.closed.remove(old)
            old.last_activity = at
            result.open.append(old)
        else:
            subject_words = [w for w in words(event.subject or "") if w not in STOP_WORDS]
            result.open.append(OpenCase(
                case_id=event.case_id, opened_at=at, last_activity=at, channel=Channel.EMAIL,
                sender="", subject=event.subject or "", summary=" ".join(subject_words)))
        return result
    # merged by hand: case_id is absorbed into into_case_id
    if case is None or not event.into_case_id or event.into_case_id == event.case_id:
        return result
    target = result.find(event.into_case_id)
    result.open.remove(case)
    if target is None:
        case.case_id = event.into_case_id
        result.open.append(case)
        return result
    target.message_ids = (target.message_ids + case.message_ids)[-config.max_message_ids_per_case:]
    target.message_count += case.message_count
    target.refs += [r for r in case.refs if r not in target.refs]
    target.thread_ids += [t for t in case.thread_ids if t not in target.thread_ids]
    target.summary = _capped(" ".join([target.summary, case.summary]), config)
    target.last_activity = max(target.last_activity, case.last_activity)
    return result
