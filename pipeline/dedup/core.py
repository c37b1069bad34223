"""Dedup: find the open case a message belongs to, or open one. Pure functions, no clock.

State is per customer account (``AccountCases``): every decision reads and writes only the
account's own open cases, so the cost of a message does not depend on how many cases the
other customers have. The agent keeps one ``AccountCases`` per account in a faust Table.

Order of the tests, strongest evidence first: redelivery of a message already in a case,
email thread (In-Reply-To / References) or case tag, a shared business reference, a chat or
WhatsApp conversation continued within the quiet period, then fuzzy similarity above the
threshold. Otherwise the message opens a case, deprioritised when the customer already has
one open ("one question at a time").
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

from pipeline.dedup.config import DedupConfig
from pipeline.dedup.refs import ref_key
from pipeline.envelope import CaseLink, Channel, Envelope, Reference
from pipeline.textnorm import words

CASE_TAG = re.compile(r"\b(C-[0-9A-F]{10})\b", re.IGNORECASE)
CONVERSATION_CHANNELS = (Channel.CHAT, Channel.WHATSAPP)

# Words that say nothing about the subject of a case (French and English support mail).
_STOP_WORD_LIST = """
a au aux avec ce ces cette dans de des du elle en et eux il ils je la le les leur lui ma
mais me meme mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur
ta te tes toi ton tu un une vos votre vous c d j l m n s t y est sont ai as avons avez ont
suis etes etait ete etre avoir fait faire peut plus tres bien merci bonjour bonsoir cordialement
salut svp stp madame monsieur aussi encore deja car donc alors comme tout tous toute toutes
the an and or of to in on at for with is are was were be been it its this that these those
i you we they he she my your our their me us them do does did have has had not no can could
would should will just please thanks thank hello hi dear regards best kind hey
"""
STOP_WORDS = frozenset(_STOP_WORD_LIST.split())


class OpenCase(BaseModel):
    """What dedup remembers of one case of a customer."""

    case_id: str
    opened_at: datetime
    last_activity: datetime
    channel: Channel
    sender: str
    subject: str = ""
    # Folded meaningful words of the case's messages (first messages first, capped).
    summary: str = ""
    refs: list[str] = Field(default_factory=list)
    message_ids: list[str] = Field(default_factory=list)
    # Email Message-IDs and conversation ids that a reply can point at.
    thread_ids: list[str] = Field(default_factory=list)
    opening_message_id: str | None = None
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


class CaseEvent(BaseModel):
    """A helpdesk event on ``cases.events`` (key: case id). ``account_id`` is required:
    it is the key of ``messages.accepted`` (account id, or the sender key when unknown)."""

    case_id: str
    account_id: str
    event: Literal["closed", "reopened", "merged"]
    # For "merged": the case that absorbs ``case_id``.
    into_case_id: str | None = None
    at: datetime | None = None
    by: str | None = None
    # For "reopened" of a case dedup no longer remembers: a subject to compare new messages with.
    subject: str | None = None


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
    return [w for w in words(envelope.full_text()) if w not in STOP_WORDS and len(w) > 1]


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
    pointed = [_bare(x) for x in [envelope.thread.in_reply_to, *envelope.thread.references] if x]
    if envelope.thread.conversation_id:
        pointed.append(f"conv:{envelope.thread.conversation_id}")
    for case in sorted(cases.open, key=lambda c: c.last_activity, reverse=True):
        hit = next((p for p in pointed if p in case.thread_ids), None)
        if hit:
            what = "conversation" if hit.startswith("conv:") else "reply to message"
            return case, f"{what} {hit}"
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


def _by_conversation(cases: AccountCases, envelope: Envelope,
                     config: DedupConfig) -> tuple[OpenCase, str] | None:
    if envelope.channel not in CONVERSATION_CHANNELS:
        return None
    quiet = timedelta(minutes=config.quiet_period_minutes)
    for case in sorted(cases.open, key=lambda c: c.last_activity, reverse=True):
        gap = envelope.received_at - case.last_activity
        if (case.channel is envelope.channel and case.sender == envelope.sender_key
                and timedelta(0) <= gap <= quiet):
            minutes = gap.total_seconds() / 60
            return case, (f"same {envelope.channel.value} sender {minutes:.0f} min after the "
                          f"case's last message (quiet period {config.quiet_period_minutes:g} min)")
    return None


def scorer(name: str) -> Callable[..., float]:
    return getattr(fuzz, name)  # type: ignore[no-any-return]


def _by_similarity(cases: AccountCases, text_words: list[str],
                   config: DedupConfig) -> tuple[OpenCase, float, str] | None:
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


def _merge_into(case: OpenCase, envelope: Envelope, refs: list[str], text_words: list[str],
                config: DedupConfig) -> OpenCase:
    merged = case.model_copy(deep=True)
    merged.message_ids = (merged.message_ids + [envelope.id])[-config.max_message_ids_per_case:]
    merged.message_count += 1
    merged.last_activity = max(merged.last_activity, envelope.received_at)
    merged.refs += [r for r in refs if r not in merged.refs]
    merged.thread_ids += [t for t in _thread_ids(envelope) if t not in merged.thread_ids]
    known = set(merged.summary.split())
    extra = [w for w in text_words if w not in known]
    merged.summary = " ".join([merged.summary, *extra]).strip()[:config.summary_chars]
    return merged


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

    found: tuple[OpenCase, float | None, str, str] | None = None
    if (hit := _by_thread(current, envelope)) is not None:
        found = (hit[0], 100.0, "thread", hit[1])
    elif (hit := _by_reference(current, keys)) is not None:
        found = (hit[0], 100.0, "reference", hit[1])
    elif (hit := _by_conversation(current, envelope, config)) is not None:
        found = (hit[0], None, "conversation", hit[1])
    elif (fuzzy := _by_similarity(current, text_words, config)) is not None:
        found = (fuzzy[0], fuzzy[1], "fuzzy", fuzzy[2])

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
        summary=" ".join(text_words)[:config.summary_chars], refs=keys,
        message_ids=[envelope.id], thread_ids=_thread_ids(envelope),
        opening_message_id=envelope.id, message_count=1, deprioritised=bool(others))
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
    target.summary = " ".join([target.summary, case.summary]).strip()[:config.summary_chars]
    target.last_activity = max(target.last_activity, case.last_activity)
    return result
