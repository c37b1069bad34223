"""The spamfilter step: last of the intake hop, and of the transcription hop.

In the intake hop, text is judged in full. A message with audio is judged only on what
needs no content (auto-reply, unknown sender, email policy): an unknown sender's voice
note is quarantined before any transcription is spent on it; one that passes waits on
``transcribe.audio``. After transcription the same step judges the transcript (silent
call, no speech, incomprehensible) and the message leaves on ``messages.accepted`` or
``messages.spam``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.envelope import Envelope
from pipeline.spamfilter.config import SpamfilterConfig
from pipeline.spamfilter.core import judge, judge_without_content, review_notes
from pipeline.spamfilter.policy import load_policy
from pipeline.stage import Output, RecordMeta, StageContext, Step
from pipeline.topics import Topic

log = logging.getLogger(__name__)

STAGE = "spamfilter"
TRANSCRIBE = "transcribe"


def waits_for_transcription(env: Envelope) -> bool:
    """Audio not transcribed yet, and not back from transcription (never sent round twice)."""
    return env.awaiting_transcription and not any(m.stage == TRANSCRIBE for m in env.trace)


def build(ctx: StageContext) -> Step:
    # Loaded once at start: a broken policy stops the worker with file:line, before any
    # message is judged by a half-read policy.
    policy = load_policy(ctx.section(STAGE, SpamfilterConfig).policy_path)
    metrics = ctx.stage_metrics(STAGE)

    async def handle(envelope: Envelope, meta: RecordMeta) -> Sequence[Output]:
        env = envelope  # decoded for this hop alone: changing it in place is safe
        key = meta.key.decode("utf-8", "replace") if meta.key is not None else env.sender_key
        if env.spam is not None and env.spam.released:
            # A released message replayed through the stage keeps its release.
            metrics.count("accepted.released")
            ctx.mark(env, STAGE)
            return [Output(Topic.ACCEPTED, key, env)]
        audio = waits_for_transcription(env)
        env.spam = judge_without_content(env, policy) if audio else judge(env, policy)
        ctx.mark(env, STAGE)
        if env.spam.quarantined:
            metrics.count(f"quarantined.{env.spam.reason}")
            log.info("event=quarantined message_id=%s reason=%s rule=%s", env.id,
                     env.spam.reason, env.spam.rule)
            return [Output(Topic.SPAM, key, env)]
        if audio:
            metrics.count("to_transcription")
            return [Output(Topic.TRANSCRIBE_AUDIO, key, env)]
        metrics.count("accepted")
        if env.spam.flags:
            env.notes.extend(note for note in review_notes(env.spam) if note not in env.notes)
            for flag in env.spam.flags:
                metrics.count(f"accepted.{flag}")
            log.info("event=accepted_flagged message_id=%s flags=%s", env.id,
                     ",".join(env.spam.flags))
        return [Output(Topic.ACCEPTED, key, env)]

    return Step(STAGE, handle)
