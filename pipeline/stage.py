"""The stage contract: what a stage declares, and the context it declares it on.

A stage's ``agent.py`` defines ``build(ctx: StageContext) -> Step``: its step (a plain
async function from one envelope to the records it produces), and, through the context,
the tables it keeps, its side inputs (the directory), its timers and background tasks.
The stage never touches faust: the runtime (``pipeline/hops.py``) chains the steps into
hops, decodes and encodes, batches, counts, retries transient failures and writes dead
letters; ``pipeline/inprocess.py`` runs the same steps without Kafka for tests.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from pipeline.blobstore import BlobStore
from pipeline.clock import Clock, utcnow
from pipeline.deadletter import DeadLetter
from pipeline.envelope import Envelope, StageMark
from pipeline.errors import ConfigError, EnvelopeError, PipelineError
from pipeline.metrics import StageMetrics
from pipeline.runtime_settings import RuntimeSettings
from pipeline.topics import Topic, TopicNames, TopicSpec

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Output:
    """One record a stage writes: a logical topic, a key, a model (``None`` = tombstone)."""

    topic: str
    key: str | None
    value: BaseModel | bytes | None


@dataclass(frozen=True)
class RecordMeta:
    """Where the record being processed came from (for a chained step: the hop's input
    record, with the key the previous step gave its output)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp: float | None
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)

    @property
    def replayed(self) -> bool:
        """Re-injected by ``pipeline deadletter replay`` (an operator asked for it again)."""
        return self.header(REPLAY_HEADER) is not None


# Set by ``pipeline deadletter replay`` on what it re-injects: the dead-letter position.
REPLAY_HEADER = "pipeline-replay-of"


# A handler gets an envelope decoded for it alone, so it may change it in place and return it.
EnvelopeHandler = Callable[[Envelope, RecordMeta], Awaitable[Sequence[Output]]]


@dataclass(frozen=True)
class Step:
    """What a stage declares: its name and the function applied to each envelope.

    An output to one of the intermediate topics (``messages.normalized``, ...) is handed to
    the next step of the hop instead of being written (unless that topic is tapped).
    ``parallel`` > 1: the hop handles that many records at once (transcription's threads).
    """

    stage: str
    handle: EnvelopeHandler
    parallel: int = 1


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


RecordHandler = Callable[[bytes | None, RecordMeta], Awaitable[Sequence[Output]]]


class SideInput(Protocol):
    """Something a stage reads besides its input, followed for as long as the worker runs."""

    async def start(self) -> None: ...

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=SideInput)
M = TypeVar("M", bound=BaseModel)


class Followed(Generic[S]):
    """A side input and whether it is loaded; steps wait for it before their first message."""

    def __init__(self, name: str, source: S) -> None:
        self.name = name
        self.source = source
        self.failure: BaseException | None = None
        self._loaded = asyncio.Event()

    def loaded(self) -> None:
        self.failure = None
        self._loaded.set()

    async def ready(self, timeout: float) -> None:
        """Return once loaded; ``TimeoutError`` after ``timeout`` (``failure`` says why)."""
        if not self._loaded.is_set():
            await asyncio.wait_for(self._loaded.wait(), timeout)


class StageContext(abc.ABC):
    """What a stage's ``build`` declares its step, tables, side inputs and tasks on.

    Two implementations: the faust runtime (``pipeline/hops.py``) and the in-process one
    (``pipeline/inprocess.py``, dict tables, no Kafka).
    """

    def __init__(self, settings: RuntimeSettings, blobs: BlobStore, *,
                 worker_name: str = "worker", clock: Clock = utcnow) -> None:
        self.settings = settings
        self.blobs = blobs
        self.worker_name = worker_name
        self.now = clock
        self.names = TopicNames(settings.kafka.topic_prefix)
        self.metrics: dict[str, StageMetrics] = {}

    def section(self, name: str, model: type[M]) -> M:
        """The stage's own settings section (``ingest:`` in the file, ``PIPELINE_INGEST_*``)."""
        value = getattr(self.settings, name, None)
        if not isinstance(value, model):
            raise ConfigError(f"settings have no {name!r} section of type {model.__name__}")
        return value

    @abc.abstractmethod
    def table(self, name: str) -> MutableMapping[str, Any]:
        """A changelogged table of this stage, partitioned like the hop's input."""

    @abc.abstractmethod
    def task(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` in the background while the worker runs."""

    @abc.abstractmethod
    def timer(self, seconds: float, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` every ``seconds`` while the worker runs."""

    @abc.abstractmethod
    def service(self, service: Any) -> None:
        """A ``mode.Service`` started and stopped with the worker (e.g. a model loader)."""

    @abc.abstractmethod
    def consume(self, topic: Topic | str, name: str, handle: RecordHandler, *,
                internal_partitions: int | None = None) -> None:
        """Apply ``handle`` to every raw record of ``topic`` (not an envelope: case events);
        ``internal_partitions``: the topic is internal to this stage, created with that many."""

    @abc.abstractmethod
    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create these topics where missing (the queues the routing rules name)."""

    @abc.abstractmethod
    def send_soon(self, output: Output) -> None:
        """Queue a record for the producer (flushed before the input's offset is committed)."""

    def side_input(self, name: str, source: S) -> Followed[S]:
        """Follow ``source`` in the background (retried while it cannot start)."""
        followed = Followed(name, source)
        self.task(lambda: self._follow(followed))
        return followed

    async def _follow(self, followed: Followed[Any]) -> None:
        conf = self.settings.worker
        delay = conf.retry_initial_seconds
        while True:
            try:
                await followed.source.start()
                break
            except PipelineError as exc:
                log.error("event=side_input_unavailable name=%s retry_in_s=%.1f error=%s",
                          followed.name, delay, exc)
                followed.failure = exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, conf.retry_max_seconds)
        followed.loaded()
        log.info("event=side_input_following name=%s", followed.name)
        try:
            await followed.source.run()
        finally:
            await followed.source.stop()

    def stopping(self) -> bool:
        """Whether the worker is stopping or handing its partitions over (a rebalance)."""
        return False

    def stage_metrics(self, stage: str) -> StageMetrics:
        if stage not in self.metrics:
            self.metrics[stage] = StageMetrics(stage, self.now())
        return self.metrics[stage]

    def dead_letter(self, stage: str, error: BaseException, meta: RecordMeta,
                    value: bytes | None, message_id: str | None = None) -> Output:
        record = DeadLetter.from_failure(
            stage=stage, error=error, failed_at=self.now(), source_topic=meta.topic,
            value=value, key=meta.key, partition=meta.partition, offset=meta.offset,
            message_id=message_id)
        key = meta.key.decode("utf-8", "replace") if meta.key is not None else None
        return Output(Topic.DEADLETTER, key, record)

    def mark(self, envelope: Envelope, stage: str) -> Envelope:
        """Record that ``stage`` handled the envelope (latency and path for operators)."""
        envelope.trace.append(StageMark(stage=stage, at=self.now()))
        return envelope
