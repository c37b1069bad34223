"""The route step, last of the cases hop: ``cases.routed`` and ``queue.<name>``.

A message that opens a case is classified and routed by the rules. A message merged into a
case that was already routed follows that case: same queue, priority and due times, written
to the case's queue as an update (``case.action = "merged"``, ``routing.follows_case``), so
the agent handling the case sees the customer's follow-up and the case is not routed twice.
The routing of each case is kept in the table ``route-cases`` (key: account id, the key of
the hop's input ``messages.accepted``, so writes are co-partitioned with it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.envelope import Envelope
from pipeline.route.config import RouteConfig
from pipeline.route.core import (
    follow_case,
    needs_refresh,
    remember_case,
    remembered_routing,
    route_case,
)
from pipeline.route.reload import RulesHolder
from pipeline.stage import Output, RecordMeta, StageContext, Step
from pipeline.topics import QUEUE_TOPIC_PREFIX, Topic, spec

log = logging.getLogger(__name__)

STAGE = "route"
# Routed cases remembered per customer (for merged follow-ups); oldest forgotten first.
CASES_PER_ACCOUNT = 200


def build(ctx: StageContext) -> Step:
    config = ctx.section(STAGE, RouteConfig)
    metrics = ctx.stage_metrics(STAGE)
    holder = RulesHolder(config.rules_path, metrics)
    holder.load()
    table = ctx.table("route-cases")
    queues_ready: set[str] = set()

    async def ensure_queues(names: list[str]) -> None:
        missing = [n for n in names if n not in queues_ready]
        if missing:
            await ctx.ensure_topics([spec(f"{QUEUE_TOPIC_PREFIX}{n}") for n in missing])
            queues_ready.update(missing)

    async def handle(envelope: Envelope, meta: RecordMeta) -> Sequence[Output]:
        rules = holder.rules
        assert rules is not None  # load() succeeded or the worker did not start
        key = meta.key.decode() if meta.key is not None else envelope.sender_key
        known: dict[str, dict] = dict(table.get(key) or {})  # type: ignore[type-arg]
        case = envelope.case
        stored = known.get(case.case_id) if case is not None else None
        def remember(routing: dict) -> None:  # type: ignore[type-arg]
            assert case is not None
            table[key] = remember_case(
                known, case.case_id, routing, envelope.received_at, ctx.now(),
                max_age_days=config.remember_cases_days, max_cases=CASES_PER_ACCOUNT)

        if stored is not None:
            previous = remembered_routing(stored)
            routing = previous if case and case.action == "opened" else follow_case(
                previous, holder.version, envelope, rules)
            metrics.count("followed_case" if routing.follows_case else "redelivered")
            if needs_refresh(stored, envelope.received_at):
                remember(stored)  # the case is active: keep remembering it
        else:
            routing = route_case(envelope, rules, holder.version)
            metrics.count(f"rule.{routing.rule}")
            metrics.count(f"category.{routing.category}")
            if case is not None:
                remember(routing.model_dump(mode="json", exclude_none=True))
        await ensure_queues([routing.queue])
        envelope.routing = routing
        ctx.mark(envelope, STAGE)
        log.debug("event=case_routed message_id=%s case_id=%s queue=%s rule=%s category=%s",
                 envelope.id, case.case_id if case else None, routing.queue, routing.rule,
                 routing.category)
        return [Output(Topic.ROUTED, key, envelope),
                Output(f"{QUEUE_TOPIC_PREFIX}{routing.queue}", key, envelope)]

    async def reload_rules() -> None:
        if holder.reload() and holder.rules is not None:
            await ensure_queues(holder.rules.queue_names())

    async def create_queue_topics() -> None:
        if holder.rules is not None:
            await ensure_queues(holder.rules.queue_names())

    ctx.timer(config.reload_interval_seconds, "route-rules-reload", reload_rules)
    ctx.task(create_queue_topics)
    return Step(STAGE, handle)
