"""What every stage's agent stands on: topics, sending, dead-lettering, counting.

A stage's ``agent.py`` defines ``register(ctx: StageContext) -> None`` and calls
``ctx.envelope_agent(stage, source, handle)``, where ``handle`` maps one envelope to the
records to write. Decoding, batching, the dead-letter topic on any error, and counters
are done here once, so a stage never (de)serialises by hand and never crashes the worker
on a bad message.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import faust.streams as faust_streams
from faust.types import EventT, StreamT
from pydantic import BaseModel, ValidationError

from pipeline.blobstore import BlobStore
from pipeline.deadletter import DeadLetter
from pipeline.envelope import Envelope, StageMark
from pipeline.errors import EnvelopeError, TransientError
from pipeline.metrics import StageMetrics
from pipeline.settings import Settings
from pipeline.topics import Topic, TopicNames

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Output:
    """One record a stage writes: a logical topic, a key, a model (``None`` = tombstone)."""

    topic: str
    key: str | None
    value: BaseModel | bytes | None


@dataclass(frozen=True)
class RecordMeta:
    """Where the record being processed came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp: float | None


# A handler gets an envelope decoded for it alone, so it may change it in place and return it.
EnvelopeHandler = Callable[[Envelope, RecordMeta], Awaitable[Sequence[Output]]]


def encode(value: BaseModel | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, Envelope):
        return value.to_bytes()
    return value.model_dump_json(exclude_none=True).encode()


def decode_envelope(value: bytes | None) -> Envelope:
    if value is None:
        raise EnvelopeError("empty record (tombstone) where an envelope was expected")
    try:
        return Envelope.from_bytes(value)
    except ValidationError as exc:
        raise EnvelopeError(f"not a valid envelope: {exc.error_count()} problem(s): "
                            + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                        for e in exc.errors()[:5])) from exc


def _make_current(event: EventT) -> None:
    """Make ``event`` the one tables write their changelog for, in this task only.

    A table writes its changelog to the partition of faust's current event, and
    ``take_events()`` leaves that at the batch's last event. Only the context variable is set
    here: ``Stream._set_current_event`` also sets the stream's shared ``current_event``
    attribute, which the stream's buffering task reads after it resumes, so a handler that
    awaits made it buffer an event of the previous batch a second time in place of a new one
    (8 to 16 of 4,000 messages lost in bench/pipeline_throughput.py).
    """
    faust_streams._current_event.set(weakref.ref(event))


class StageContext:
    """Handed to every stage's ``register``: the app, settings, topics, blobs and counters."""

    def __init__(self, app: faust.App, settings: Settings, blobs: BlobStore,
                 *, worker_name: str = "worker", clock: Clock = utcnow) -> None:
        self.app = app
        self.settings = settings
        self.blobs = blobs
        self.worker_name = worker_name
        self.now = clock
        self.names = TopicNames(settings.kafka.topic_prefix)
        self.metrics: dict[str, StageMetrics] = {}
        self._topics: dict[str, faust.TopicT] = {}

    def topic(self, logical: Topic | str, **options: Any) -> faust.TopicT:
        """The faust topic for a logical name, bytes in and out (stages decode via the context)."""
        name = self.names(logical)
        if name not in self._topics:
            self._topics[name] = self.app.topic(
                name, key_serializer="raw", value_serializer="raw", **options)
        return self._topics[name]

    def stage_metrics(self, stage: str) -> StageMetrics:
        if stage not in self.metrics:
            self.metrics[stage] = StageMetrics(stage, self.now())
        return self.metrics[stage]

    def send_soon(self, output: Output) -> None:
        """Queue a record for the producer; faust flushes it before committing the input."""
        key = output.key.encode() if output.key is not None else None
        self.topic(output.topic).send_soon(key=key, value=encode(output.value))

    def dead_letter(self, stage: str, error: BaseException, meta: RecordMeta,
                    value: bytes | None, message_id: str | None = None) -> Output:
        record = DeadLetter.from_failure(
            stage=stage, error=error, failed_at=self.now(), source_topic=meta.topic,
            value=value, key=meta.key, partition=meta.partition, offset=meta.offset,
            message_id=message_id)
        key = meta.key.decode("utf-8", "replace") if meta.key is not None else None
        return Output(Topic.DEADLETTER, key, record)

    async def process_event(self, stage: str, source: Topic | str, event: EventT,
                            handle: EnvelopeHandler, *, in_counter: str = "in") -> None:
        """Decode one record, handle it, queue its outputs (or its dead letter); count and time."""
        metrics = self.stage_metrics(stage)
        started = time.perf_counter()
        message = event.message
        meta = RecordMeta(source, message.partition, message.offset, message.key,
                          message.timestamp)
        value: bytes | None = event.value
        metrics.count(in_counter)
        outputs = await self._handle_with_retries(stage, meta, value, handle, metrics)
        encoded: dict[int, bytes | None] = {}  # route writes one envelope to two topics
        for output in outputs:
            if id(output.value) not in encoded:
                encoded[id(output.value)] = encode(output.value)
            key = output.key.encode() if output.key is not None else None
            self.topic(output.topic).send_soon(key=key, value=encoded[id(output.value)])
            metrics.count(f"out.{output.topic}")
        metrics.observe_latency(time.perf_counter() - started)

    async def _handle_with_retries(self, stage: str, meta: RecordMeta, value: bytes | None,
                                   handle: EnvelopeHandler, metrics: StageMetrics
                                   ) -> Sequence[Output]:
        """The handler's outputs; a transient failure is retried with backoff (the stage
        waits on this message, so its partition pauses), any other failure is the message's
        dead letter at once."""
        conf = self.settings.worker
        delay = conf.retry_initial_seconds
        paused_since: float | None = None
        while True:
            envelope: Envelope | None = None
            try:
                envelope = decode_envelope(value)  # afresh: a failed try may have changed it
                outputs = await handle(envelope, meta)
            except TransientError as exc:
                msg_id = envelope.id if envelope is not None else None
                if paused_since is None:
                    paused_since = time.monotonic()
                    metrics.count("paused")
                    log.warning("event=stage_paused stage=%s message_id=%s topic=%s "
                                "partition=%s offset=%s retry_in_s=%.1f error=%r", stage,
                                msg_id, meta.topic, meta.partition, meta.offset, delay, exc)
                reason = f"{type(exc).__name__}: {exc}"[:300]
                metrics.count("retried")
                metrics.error(reason, self.now())
                metrics.info["paused"] = reason
                await asyncio.sleep(delay)
                delay = min(delay * 2, conf.retry_max_seconds)
                continue
            except Exception as exc:  # poison: a dead letter, never a crashed worker
                msg_id = envelope.id if envelope is not None else None
                log.warning("event=dead_letter stage=%s message_id=%s topic=%s partition=%s "
                            "offset=%s error=%r", stage, msg_id, meta.topic, meta.partition,
                            meta.offset, exc)
                metrics.count("deadletter")
                metrics.error(f"{type(exc).__name__}: {exc}"[:300], self.now())
                outputs = [self.dead_letter(stage, exc, meta, value, msg_id)]
            if paused_since is not None:
                metrics.info.pop("paused", None)
                log.info("event=stage_resumed stage=%s topic=%s partition=%s offset=%s "
                         "paused_s=%.1f", stage, meta.topic, meta.partition, meta.offset,
                         time.monotonic() - paused_since)
            return outputs

    def envelope_agent(self, stage: str, source: Topic | str, handle: EnvelopeHandler,
                       *, concurrency: int = 1, name: str | None = None) -> faust.types.AgentT:
        """Run ``handle`` on every envelope of ``source``; errors go to the dead-letter topic."""
        self.stage_metrics(stage)
        conf = self.settings.worker

        async def agent(stream: StreamT) -> None:
            batches = stream.take_events(  # type: ignore[attr-defined]
                conf.batch_size, within=conf.batch_within_seconds)
            async for events in batches:
                for event in events:
                    _make_current(event)
                    await self.process_event(stage, source, event, handle)

        return self.app.agent(self.topic(source), name=name or f"{stage}",
                              concurrency=concurrency)(agent)

    def mark(self, envelope: Envelope, stage: str) -> Envelope:
        """Record that ``stage`` handled the envelope (latency and path for operators)."""
        envelope.trace.append(StageMark(stage=stage, at=self.now()))
        return envelope
