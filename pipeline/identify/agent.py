"""The identify step of the intake hop: the sender matched to a customer, re-keyed by account."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.envelope import Envelope
from pipeline.errors import DirectoryUnavailable
from pipeline.identify.config import IdentifyConfig
from pipeline.identify.core import identify, partition_key
from pipeline.identify.reader import DirectoryReader
from pipeline.stage import Output, RecordMeta, StageContext, Step
from pipeline.topics import Topic

log = logging.getLogger(__name__)

STAGE = "identify"


def build(ctx: StageContext) -> Step:
    config = ctx.section(STAGE, IdentifyConfig)
    metrics = ctx.stage_metrics(STAGE)
    # Every worker reads the whole directory topic (no group): a GlobalTable equivalent
    # we control, so a lookup can wait for changes made before the message was sent.
    # A directory topic that cannot be read yet is retried; messages wait meanwhile.
    directory = ctx.side_input("directory", DirectoryReader(ctx.settings.kafka,
                                                            config.default_region))

    async def handle(envelope: Envelope, meta: RecordMeta) -> Sequence[Output]:
        # The directory not loaded (yet) is an outage, not a verdict on the message: the
        # hop pauses and retries it (pipeline/chain.py), it is never dead-lettered for it.
        try:
            await directory.ready(config.directory_timeout_seconds)
        except TimeoutError as exc:
            why = f": {directory.failure}" if directory.failure else ""
            raise DirectoryUnavailable("employee directory not loaded after "
                                       f"{config.directory_timeout_seconds:g} s{why}") from exc
        reader = directory.source
        if config.read_your_writes:
            # Records produced before this message are applied first (one ListOffsets
            # request per batch of older messages; see docs/identify-spam.md).
            since = meta.timestamp or None  # faust gives the record's time in seconds
            try:
                await reader.catch_up(since, config.directory_timeout_seconds)
            except TimeoutError as exc:
                raise DirectoryUnavailable("employee directory did not catch up within "
                                           f"{config.directory_timeout_seconds:g} s") from exc
        env = envelope  # decoded for this hop alone: changing it in place is safe
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
        # From here on keyed by account: the hop's output topics are partitioned by it.
        return [Output(Topic.IDENTIFIED, partition_key(env), env)]

    return Step(STAGE, handle)
