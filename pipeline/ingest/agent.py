"""The ingest step, first of the intake hop: validated, normalised, source retries dropped."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.envelope import Attachment, AttachmentKind, Envelope
from pipeline.ingest.config import IngestConfig
from pipeline.ingest.core import (
    Sighting,
    collision_note,
    is_source_id_collision,
    is_source_retry,
    normalise,
)
from pipeline.stage import Output, RecordMeta, StageContext, Step
from pipeline.topics import Topic

log = logging.getLogger(__name__)

STAGE = "ingest"
SWEEP_EVERY_SECONDS = 60.0


def build(ctx: StageContext) -> Step:
    config = ctx.section(STAGE, IngestConfig)
    window = config.idempotency_window_hours * 3600
    metrics = ctx.stage_metrics(STAGE)
    # Keys are channel:source_id (plus the content digest where the connector sets one);
    # inbound.raw is keyed by sender, and a source message always has the same sender, so
    # every delivery of it lands in the same partition.
    seen = ctx.table("ingest-seen")
    last_sweep: dict[int, float] = {}

    def sweep(partition: int, now: float) -> None:
        """Forget expired keys of this partition (writes go to its changelog partition)."""
        if now - last_sweep.get(partition, 0.0) < SWEEP_EVERY_SECONDS:
            return
        last_sweep[partition] = now
        expired = [k for k, v in seen.items() if v[1] == partition and now - v[0] > window]
        for key in expired:
            del seen[key]
        if expired:
            metrics.count("idempotency_keys_expired", len(expired))

    async def handle(envelope: Envelope, meta: RecordMeta) -> Sequence[Output]:
        now = ctx.now().timestamp()
        sweep(meta.partition, now)
        key = envelope.idempotency_key
        stored = seen.get(key)
        first = Sighting(*stored) if stored else None
        # A dead letter replayed by an operator is wanted again, although its key is known.
        if not meta.replayed and is_source_retry(first, meta.partition, meta.offset, now,
                                                 window):
            metrics.count("dropped.source_retry")
            log.info("event=source_retry_dropped message_id=%s key=%s", envelope.id, key)
            return []
        # Where the source id alone is not unique (email Message-IDs), its first sighting
        # tells an operator that this distinct message shares it with another one.
        shared_key = envelope.source_key if envelope.source_digest else None
        stored_shared = seen.get(shared_key) if shared_key else None
        shared = Sighting(*stored_shared) if stored_shared else None
        result = normalise(envelope, config)
        env = result.envelope
        if shared is not None and is_source_id_collision(shared, envelope.source_digest, now,
                                                         window):
            env.notes.append(collision_note(envelope, shared))
            metrics.count("source_id_collision")
            log.info("event=source_id_collision message_id=%s key=%s", envelope.id, shared_key)
        if result.overflow_text is not None:
            stored_blob = await ctx.blobs.aput(result.overflow_text.encode("utf-8"))
            env.attachments.append(Attachment(
                kind=AttachmentKind.DOCUMENT, content_type="text/plain; charset=utf-8",
                size=stored_blob.size, uri=stored_blob.uri, sha256=stored_blob.sha256,
                filename="full-text.txt"))
        # Remember the key only once nothing can fail any more: a message dead-lettered for
        # a transient reason (blob store down) must not be taken for a retry when replayed.
        if first is None:
            seen[key] = [now, meta.partition, meta.offset]
        if shared_key is not None and shared is None:
            seen[shared_key] = [now, meta.partition, meta.offset, envelope.source_digest]
        ctx.mark(env, STAGE)
        return [Output(Topic.NORMALIZED, env.sender_key, env)]

    return Step(STAGE, handle)
