"""A hop: one input record through several stages' steps in one task, no broker between.

The runtime (faust in ``pipeline/app.py``, or ``pipeline/inprocess.py`` in tests) hands a
``Chain`` each record of the hop's input topic and writes what it returns. Here, once for
every hop: decoding, handing each step's envelope to the next, the taps, counting, timing,
retrying a transient failure, and the dead letter of a poison message, naming the step
that failed.

A failed message's dead letter keeps the bytes of the hop's input, and a replay puts them
back on that input: the whole hop runs again. The steps before the one that failed see a
redelivery (each stage is idempotent for one: ingest knows the record's position, dedup the
message id), and ingest lets a record marked as replayed through (``RecordMeta.replayed``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from pipeline.envelope import Envelope
from pipeline.errors import TransientError
from pipeline.metrics import StageMetrics
from pipeline.stage import Output, RecordMeta, StageContext, Step, decode_envelope
from pipeline.stages import TAPS, HopSpec, load_stage

log = logging.getLogger(__name__)


class Abandoned(Exception):
    """A record waiting out an outage was given up because the worker stops or hands its
    partition over: it is not acknowledged, and the partition's next owner reads it again."""


# How often a paused hop looks whether the worker is stopping (a backoff is up to 30 s).
STOP_CHECK_SECONDS = 0.2


class StepFailed(Exception):
    """A step raised; ``__cause__`` is what it raised."""

    def __init__(self, stage: str, message_id: str | None) -> None:
        super().__init__(stage)
        self.stage = stage
        self.message_id = message_id


@dataclass
class Chain:
    """The steps of one hop, in order, and the taps that are switched on."""

    hop: HopSpec
    steps: Sequence[Step]
    ctx: StageContext
    taps: frozenset[str] = frozenset()

    @property
    def parallel(self) -> int:
        return self.steps[0].parallel

    def _metrics(self, stage: str) -> StageMetrics:
        return self.ctx.stage_metrics(stage)

    async def run(self, value: bytes | None, meta: RecordMeta) -> list[Output]:
        """The records to write for one input record: outputs, or its dead letter.

        A transient failure (broker, blob store, directory or model briefly away) is
        retried with backoff on the same record, which pauses the hop's partition; any
        other failure is the record's dead letter at once, never a crashed worker.
        """
        conf = self.ctx.settings.worker
        delay = conf.retry_initial_seconds
        paused_since: float | None = None
        paused_stage = ""
        first_try = True
        while True:
            try:
                outputs = await self._through(value, meta, count_in=first_try)
            except StepFailed as failed:
                cause = failed.__cause__
                assert cause is not None
                metrics = self._metrics(failed.stage)
                if isinstance(cause, TransientError):
                    if paused_since is None:
                        paused_since, paused_stage = time.monotonic(), failed.stage
                        metrics.count("paused")
                        log.warning("event=stage_paused stage=%s hop=%s message_id=%s "
                                    "topic=%s partition=%s offset=%s retry_in_s=%.1f error=%r",
                                    failed.stage, self.hop.name, failed.message_id, meta.topic,
                                    meta.partition, meta.offset, delay, cause)
                    reason = f"{type(cause).__name__}: {cause}"[:300]
                    metrics.count("retried")
                    metrics.error(reason, self.ctx.now())
                    metrics.info["paused"] = reason
                    first_try = False
                    await self._wait(delay, failed.stage, meta)
                    delay = min(delay * 2, conf.retry_max_seconds)
                    continue
                log.warning("event=dead_letter stage=%s hop=%s message_id=%s topic=%s "
                            "partition=%s offset=%s error=%r", failed.stage, self.hop.name,
                            failed.message_id, meta.topic, meta.partition, meta.offset, cause)
                metrics.count("deadletter")
                metrics.error(f"{type(cause).__name__}: {cause}"[:300], self.ctx.now())
                outputs = [self.ctx.dead_letter(failed.stage, cause, meta, value,
                                                failed.message_id)]
            if paused_since is not None:
                for step in self.steps:
                    self._metrics(step.stage).info.pop("paused", None)
                log.info("event=stage_resumed stage=%s hop=%s topic=%s partition=%s offset=%s "
                         "paused_s=%.1f", paused_stage, self.hop.name, meta.topic,
                         meta.partition, meta.offset, time.monotonic() - paused_since)
            return outputs

    async def _wait(self, seconds: float, stage: str, meta: RecordMeta) -> None:
        """Sleep before a retry, unless the worker stops or gives the partition away: a
        stop or a rebalance waits for records being processed, and this one could wait for
        as long as the outage lasts."""
        deadline = time.monotonic() + seconds
        while True:
            if self.ctx.stopping():
                log.warning("event=hop_abandoned stage=%s hop=%s topic=%s partition=%s "
                            "offset=%s why=worker_stopping_or_rebalancing", stage,
                            self.hop.name, meta.topic, meta.partition, meta.offset)
                raise Abandoned(f"{self.hop.name}: {meta.topic}@{meta.partition}:{meta.offset}")
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, STOP_CHECK_SECONDS))

    async def _through(self, value: bytes | None, meta: RecordMeta, *,
                       count_in: bool) -> list[Output]:
        first = self.steps[0].stage
        try:
            envelope = decode_envelope(value)  # afresh on every try: a failed one changed it
        except Exception as exc:
            if count_in:
                self._metrics(first).count("in")
            raise StepFailed(first, None) from exc
        written: list[Output] = []
        step_meta = meta
        for index, step in enumerate(self.steps):
            metrics = self._metrics(step.stage)
            if count_in:
                metrics.count("in")
            started = time.perf_counter()
            try:
                outputs = await step.handle(envelope, step_meta)
            except Exception as exc:
                raise StepFailed(step.stage, envelope.id) from exc
            metrics.observe_latency(time.perf_counter() - started)
            handed_on: Output | None = None
            last = index == len(self.steps) - 1
            for output in outputs:
                metrics.count(f"out.{output.topic}")
                if (handed_on is None and not last and output.topic in TAPS
                        and isinstance(output.value, Envelope)):
                    handed_on = output
                    if output.topic in self.taps:
                        written.append(output)
                else:
                    written.append(output)
            if handed_on is None:
                break
            assert isinstance(handed_on.value, Envelope)
            envelope = handed_on.value
            key = handed_on.key.encode() if handed_on.key is not None else None
            step_meta = replace(meta, key=key)
        return written


def build_steps(ctx: StageContext, stages: Iterable[str]) -> dict[str, Step]:
    """Each stage's step, built once (spamfilter ends two hops with the same policy)."""
    steps: dict[str, Step] = {}
    for name in stages:
        if name not in steps:
            steps[name] = load_stage(name).build(ctx)
    return steps


def build_chains(ctx: StageContext, hops: Sequence[HopSpec]) -> list[Chain]:
    steps = build_steps(ctx, [stage for hop in hops for stage in hop.steps])
    taps = frozenset(ctx.settings.worker.taps)
    return [Chain(hop, [steps[name] for name in hop.steps], ctx, taps) for hop in hops]
