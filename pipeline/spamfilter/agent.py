"""The spam filter agent: ``messages.identified`` → ``messages.accepted`` or ``messages.spam``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.envelope import Envelope
from pipeline.spamfilter.core import judge, review_notes
from pipeline.spamfilter.policy import load_policy
from pipeline.stage import Output, RecordMeta, StageContext
from pipeline.topics import Topic

log = logging.getLogger(__name__)

STAGE = "spamfilter"


def register(ctx: StageContext) -> None:
    # Loaded once at start: a broken policy stops the worker with file:line, before any
    # message is judged by a half-read policy.
    policy = load_policy(ctx.settings.spamfilter.policy_path)
    metrics = ctx.stage_metrics(STAGE)

    async def handle(envelope: Envelope, meta: RecordMeta) -> Sequence[Output]:
        env = envelope  # decoded for this handler alone: changing it in place is safe
        key = meta.key.decode("utf-8", "replace") if meta.key is not None else env.sender_key
        if env.spam is not None and env.spam.released:
            # A released message replayed through the stage keeps its release.
            metrics.count("accepted.released")
            ctx.mark(env, STAGE)
            return [Output(Topic.ACCEPTED, key, env)]
        env.spam = judge(env, policy)
        ctx.mark(env, STAGE)
        if env.spam.quarantined:
            metrics.count(f"quarantined.{env.spam.reason}")
            log.info("event=quarantined message_id=%s reason=%s rule=%s", env.id,
                     env.spam.reason, env.spam.rule)
            return [Output(Topic.SPAM, key, env)]
        metrics.count("accepted")
        if env.spam.flags:
            env.notes.extend(note for note in review_notes(env.spam) if note not in env.notes)
            for flag in env.spam.flags:
                metrics.count(f"accepted.{flag}")
            log.info("event=accepted_flagged message_id=%s flags=%s", env.id,
                     ",".join(env.spam.flags))
        return [Output(Topic.ACCEPTED, key, env)]

    ctx.envelope_agent(STAGE, Topic.IDENTIFIED, handle)
