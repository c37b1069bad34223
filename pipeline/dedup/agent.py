"""The dedup step, first of the cases hop; ``cases.events`` (from the helpdesk) closes cases.

State: the table ``dedup-open-cases``, key = account id (the key of
``messages.accepted``), value = that customer's ``AccountCases``. faust writes a table's
changelog to the partition of the record being processed, so every write must happen while
processing a record keyed by the same account id. ``cases.events`` is keyed by case id, so
its events are first re-keyed by their ``account_id`` onto the internal topic
``dedup.case-events.by-account`` (same partition count, same partitioner as
``messages.accepted``); a second consumer reading that topic writes the table,
co-partitioned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError

from pipeline.dedup.config import DedupConfig
from pipeline.dedup.core import (
    AccountCases,
    CaseEvent,
    account_key,
    age_out,
    apply_event,
    assign,
)
from pipeline.dedup.refs import envelope_references
from pipeline.envelope import Envelope
from pipeline.errors import EnvelopeError
from pipeline.stage import Output, RecordMeta, StageContext, Step
from pipeline.topics import Topic

log = logging.getLogger(__name__)

STAGE = "dedup"
# Idle accounts are swept for aged-out cases this often (per partition).
SWEEP_EVERY_SECONDS = 300.0
EVENTS_BY_ACCOUNT = "dedup.case-events.by-account"


def _load(value: object) -> AccountCases:
    return AccountCases.model_validate(value) if value else AccountCases()


def build(ctx: StageContext) -> Step:
    config = ctx.section(STAGE, DedupConfig)
    metrics = ctx.stage_metrics(STAGE)
    partitions = ctx.settings.kafka.partitions
    table = ctx.table("dedup-open-cases")

    last_sweep: dict[int, float] = {}

    def sweep_idle_accounts(partition: int) -> None:
        """Age out cases of accounts that wrote nothing lately (only this partition's)."""
        now = ctx.now()
        if now.timestamp() - last_sweep.get(partition, 0.0) < SWEEP_EVERY_SECONDS:
            return
        last_sweep[partition] = now.timestamp()
        for key, value in list(table.items()):
            if not value or value.get("partition") != partition:
                continue
            before = _load(value)
            cases, gone = age_out(before, now, config)
            if len(cases.open) + len(cases.closed) == len(before.open) + len(before.closed):
                continue
            metrics.count("case.aged_out", gone)
            if cases.open or cases.closed:
                table[key] = cases.model_dump(mode="json")
            else:
                del table[key]

    async def handle(envelope: Envelope, meta: RecordMeta) -> Sequence[Output]:
        sweep_idle_accounts(meta.partition)
        key = account_key(envelope, meta.key.decode() if meta.key is not None else None)
        cases = _load(table.get(key))
        refs = envelope_references(envelope, config.reference_patterns)
        decision = assign(cases, envelope, refs, config, ctx.now())
        link = decision.link
        if link.matched_by != "redelivery":
            decision.cases.partition = meta.partition
            table[key] = decision.cases.model_dump(mode="json")
        metrics.count(f"case.{link.action}")
        metrics.count(f"matched_by.{link.matched_by}")
        if link.deprioritised and link.action == "opened":
            metrics.count("case.deprioritised")
        if decision.aged_out:
            metrics.count("case.aged_out", decision.aged_out)
        if decision.evicted:
            metrics.count("case.evicted", decision.evicted)
        log.info("event=case_%s message_id=%s case_id=%s account=%s matched_by=%s score=%s",
                 link.action, envelope.id, link.case_id, key, link.matched_by, link.score)
        envelope.refs = refs
        envelope.case = link
        ctx.mark(envelope, STAGE)
        return [Output(Topic.CASE_UPDATES, key, envelope)]

    async def rekey_event(value: bytes | None, meta: RecordMeta) -> Sequence[Output]:
        """cases.events (key: case id) → by-account topic (key: account id); no table writes."""
        try:
            if value is None:
                raise EnvelopeError("empty record (tombstone) where a case event was expected")
            parsed = CaseEvent.model_validate_json(value)
        except (ValidationError, EnvelopeError) as exc:
            metrics.count("case_event.invalid")
            return [ctx.dead_letter(STAGE, exc, meta, value)]
        return [Output(EVENTS_BY_ACCOUNT, parsed.account_id, parsed)]

    async def apply_case_event(value: bytes | None, meta: RecordMeta) -> Sequence[Output]:
        try:
            parsed = CaseEvent.model_validate_json(value or b"")
        except ValidationError as exc:  # only valid events are re-keyed; be safe anyway
            metrics.count("case_event.invalid")
            log.warning("event=case_event_invalid error=%r", exc)
            return []
        key = parsed.account_id
        table[key] = apply_event(_load(table.get(key)), parsed, config,
                                 ctx.now()).model_dump(mode="json")
        metrics.count(f"case_event.{parsed.event}")
        log.info("event=case_event_applied case_id=%s account=%s kind=%s",
                 parsed.case_id, key, parsed.event)
        return []

    ctx.consume(Topic.CASE_EVENTS, "dedup-case-events", rekey_event)
    ctx.consume(EVENTS_BY_ACCOUNT, "dedup-case-events-by-account", apply_case_event,
                internal_partitions=partitions)
    return Step(STAGE, handle)
