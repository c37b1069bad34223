"""What every stage's agent stands on: topics, sending, dead-lettering, counting.

A stage's ``agent.py`` defines ``register(ctx: StageContext) -> None`` and calls
``ctx.envelope_agent(stage, source, handle)``, where ``handle`` maps one envelope to the
records to write. Decoding, batching, the dead-letter topic on any error, and counters
are done here once, so a stage never (de)serialises by hand and never crashes the worker
on a bad message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT, StreamT
from pydantic import BaseModel, ValidationError

from pipeline.blobstore import BlobStore
from pipeline.deadletter import DeadLetter
from pipeline.envelope import Envelope, StageMark
from pipeline.errors import EnvelopeError
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
        envelope: Envelope | None = None
        try:
            envelope = decode_envelope(value)
            outputs = await handle(envelope, meta)
        except Exception as exc:  # any failure is a dead letter, never a crashed worker
            msg_id = envelope.id if envelope is not None else None
            log.warning("event=dead_letter stage=%s message_id=%s topic=%s partition=%s "
                        "offset=%s error=%r", stage, msg_id, meta.topic, meta.partition,
                        meta.offset, exc)
            metrics.count("deadletter")
            metrics.error(f"{type(exc).__name__}: {exc}"[:300], self.now())
            outputs = [self.dead_letter(stage, exc, meta, value, msg_id)]
        for output in outputs:
            self.send_soon(output)
            metrics.count(f"out.{output.topic}")
        metrics.observe_latency(time.perf_counter() - started)

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
                    # take_events() leaves faust's "current event" at the batch's last event;
                    # tables write their changelog to the current event's partition, read
                    # from a task-local context variable. Only that is set here: the stream's
                    # ``current_event`` attribute is shared with take_events()' buffering
                    # task, which reads it to know which event it is adding; overwriting it
                    # while a handler awaits made that task buffer the event being processed
                    # again instead of the new one (a message processed twice, the next lost).
                    pending = stream.current_event
                    stream._set_current_event(event)  # type: ignore[attr-defined]
                    stream.current_event = pending
                    await self.process_event(stage, source, event, handle)

        return self.app.agent(self.topic(source), name=name or f"{stage}",
                              concurrency=concurrency)(agent)

    def mark(self, envelope: Envelope, stage: str) -> Envelope:
        """Record that ``stage`` handled the envelope (latency and path for operators)."""
        envelope.trace.append(StageMark(stage=stage, at=self.now()))
        return envelope
