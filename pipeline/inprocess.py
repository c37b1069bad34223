"""The stage contract without Kafka: every hop in one process, records passed by topic.

For tests of steps and whole chains: tables are dicts, a written record is appended to
its topic's list and, where a hop or a consumer reads that topic, handled at once. The
steps are the ones the faust runtime runs (``build(ctx)`` of each stage), chained by the
same ``Chain``; side inputs can be replaced (a directory given as a value).
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.blobstore import BlobStore
from pipeline.chain import Chain, build_chains
from pipeline.envelope import Envelope
from pipeline.runtime_settings import RuntimeSettings
from pipeline.stage import (
    Clock,
    Followed,
    Output,
    RecordHandler,
    RecordMeta,
    S,
    StageContext,
    encode,
    utcnow,
)
from pipeline.stages import resolve_hops
from pipeline.topics import Topic, TopicSpec


@dataclass(frozen=True)
class Written:
    """A record as it was written: topic, partition 0, its offset, key and bytes."""

    topic: str
    offset: int
    key: str | None
    value: bytes | None

    def envelope(self) -> Envelope:
        assert self.value is not None
        return Envelope.from_bytes(self.value)


class InProcessContext(StageContext):
    def __init__(self, settings: RuntimeSettings, blobs: BlobStore, *, clock: Clock = utcnow,
                 side_inputs: dict[str, Any] | None = None) -> None:
        super().__init__(settings, blobs, worker_name="in-process", clock=clock)
        self.tables: dict[str, dict[str, Any]] = {}
        self.consumers: dict[str, RecordHandler] = {}
        self.timers: dict[str, Callable[[], Awaitable[None]]] = {}
        self.tasks: list[Callable[[], Awaitable[None]]] = []
        self.services: list[Any] = []
        self.created_topics: list[str] = []
        self.outbox: list[Output] = []
        self.stop_requested = False
        self._side_inputs = side_inputs or {}

    def stopping(self) -> bool:
        return self.stop_requested

    def table(self, name: str) -> MutableMapping[str, Any]:
        return self.tables.setdefault(name, {})

    def task(self, fn: Callable[[], Awaitable[None]]) -> None:
        self.tasks.append(fn)  # not run: side inputs are given, timers are called by tests

    def timer(self, seconds: float, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        self.timers[name] = fn

    def service(self, service: Any) -> None:
        self.services.append(service)

    def consume(self, topic: Topic | str, name: str, handle: RecordHandler, *,
                internal_partitions: int | None = None) -> None:
        self.consumers[str(topic)] = handle

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        self.created_topics.extend(s.name for s in specs)

    def send_soon(self, output: Output) -> None:
        self.outbox.append(output)

    def side_input(self, name: str, source: S) -> Followed[S]:
        if name not in self._side_inputs:
            return super().side_input(name, source)
        followed: Followed[S] = Followed(name, self._side_inputs[name])
        followed.loaded()
        return followed


class InProcessPipeline:
    """The hops ``stages`` choose, wired topic to topic in one process."""

    def __init__(self, settings: RuntimeSettings, *, stages: list[str] | None = None,
                 clock: Clock = utcnow, side_inputs: dict[str, Any] | None = None,
                 blobs: BlobStore | None = None) -> None:
        self.ctx = InProcessContext(settings, blobs or BlobStore(settings.blobs.url),
                                    clock=clock, side_inputs=side_inputs)
        self.chains: dict[str, Chain] = {
            str(chain.hop.source): chain
            for chain in build_chains(self.ctx, resolve_hops(stages))}
        self.topics: dict[str, list[Written]] = collections.defaultdict(list)

    async def send(self, topic: Topic | str, key: str | None, value: Envelope | bytes | None,
                   headers: tuple[tuple[str, bytes], ...] = ()) -> None:
        """Write one record and handle everything it leads to, until nothing is left."""
        pending = collections.deque([(str(topic), key, encode(value), headers)])
        while pending:
            name, record_key, data, record_headers = pending.popleft()
            written = Written(name, len(self.topics[name]), record_key, data)
            self.topics[name].append(written)
            meta = RecordMeta(name, 0, written.offset,
                              record_key.encode() if record_key is not None else None,
                              self.ctx.now().timestamp(), record_headers)
            outputs: list[Output] = []
            if name in self.chains:
                outputs = await self.chains[name].run(data, meta)
            elif name in self.consumers:
                outputs = list(await self.consumers[name](data, meta))
            outputs += self.ctx.outbox
            self.ctx.outbox.clear()
            pending.extend((str(o.topic), o.key, encode(o.value), ()) for o in outputs)

    @property
    def consumers(self) -> dict[str, RecordHandler]:
        return self.ctx.consumers

    def envelopes(self, topic: Topic | str) -> list[Envelope]:
        return [w.envelope() for w in self.topics[str(topic)] if w.value is not None]

    def counter(self, stage: str, name: str) -> int:
        metrics = self.ctx.metrics.get(stage)
        return metrics.counters[name] if metrics is not None else 0
