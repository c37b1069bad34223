"""The identify agent: ``messages.transcribed`` → ``messages.identified``, re-keyed by account."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pipeline.envelope import Envelope
from pipeline.errors import DirectoryUnavailable, PipelineError
from pipeline.identify.core import identify, partition_key
from pipeline.identify.reader import DirectoryReader
from pipeline.stage import Output, RecordMeta, StageContext
from pipeline.topics import Topic

log = logging.getLogger(__name__)

STAGE = "identify"


def register(ctx: StageContext) -> None:
    config = ctx.settings.identify
    metrics = ctx.stage_metrics(STAGE)
    reader = DirectoryReader(ctx.settings.kafka, config.default_region)
    started = asyncio.Event()
    failure: list[BaseException] = []

    @ctx.app.task
    async def follow_directory() -> None:
        # Every worker reads the whole directory topic (no group): a GlobalTable equivalent
        # we control, so a lookup can wait for changes made before the message was sent.
        # A directory topic that cannot be read yet is retried; messages wait meanwhile.
        delay = ctx.settings.worker.retry_initial_seconds
        while True:
            try:
                await reader.start()
                break
            except PipelineError as exc:
                log.error("event=directory_unavailable retry_in_s=%.1f error=%s", delay, exc)
                failure[:] = [exc]
                await asyncio.sleep(delay)
                delay = min(delay * 2, ctx.settings.worker.retry_max_seconds)
        failure.clear()
        started.set()
        log.info("event=directory_following topic=%s", reader.topic)
        try:
            await reader.run()
        finally:
            await reader.stop()

    async def handle(envelope: Envelope, meta: RecordMeta) -> Sequence[Output]:
        # The directory not loaded (yet) is an outage, not a verdict on the message: the
        # stage pauses and retries it (pipeline/stage.py), it is never dead-lettered for it.
        try:
            await asyncio.wait_for(started.wait(), config.directory_timeout_seconds)
        except TimeoutError as exc:
            why = f": {failure[0]}" if failure else ""
            raise DirectoryUnavailable("employee directory not loaded after "
                                       f"{config.directory_timeout_seconds:g} s{why}") from exc
        if config.read_your_writes:
            # Records produced before this message are applied first (one ListOffsets
            # request per batch of older messages; see docs/identify-spam.md).
            since = meta.timestamp or None  # faust gives the record's time in seconds
            try:
                await reader.catch_up(since, config.directory_timeout_seconds)
            except TimeoutError as exc:
                raise DirectoryUnavailable("employee directory did not catch up within "
                                           f"{config.directory_timeout_seconds:g} s") from exc
        env = envelope  # decoded for this handler alone: changing it in place is safe
        env.identity = identify(env, reader.directory)
        metrics.info["directory_employees"] = len(reader.directory)
        if env.identity.identified:
            metrics.count(f"identified.{env.identity.matched_by}")
        elif env.identity.ambiguous:
            metrics.count("ambiguous")
            log.info("event=ambiguous_sender message_id=%s candidates=%s", env.id,
                     ",".join(env.identity.candidates))
        else:
            metrics.count("unknown")
        ctx.mark(env, STAGE)
        return [Output(Topic.IDENTIFIED, partition_key(env), env)]

    ctx.envelope_agent(STAGE, Topic.TRANSCRIBED, handle)
