"""List dead-letter records and replay them into the topic they came from, once.

A stage's dead letter holds its hop's input record, and names the step that failed: a
replay runs the whole hop again (``pipeline/chain.py``).

Replayed records are remembered on a compacted topic, ``pipeline.deadletter.replayed``
(key: ``<partition>:<offset>`` of the dead-letter record, value: where it was re-injected).
A second ``replay`` skips what the ledger holds, so running the same command twice (or
``--all`` after ``--id``) never re-injects a record twice. A replayed record that fails
again becomes a *new* dead-letter record (a new position), which can be replayed again.
The ledger is written after the broker acknowledged the re-injected record: a crash in
between can re-inject once more, which the stages' id idempotency absorbs (at-least-once).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ValidationError

from pipeline.blobstore import BlobStore
from pipeline.deadletter import DeadLetter
from pipeline.errors import ConfigError
from pipeline.kafka import AckedProducer, consumer, ensure_topics, read_records
from pipeline.settings import Settings
from pipeline.stage import REPLAY_HEADER
from pipeline.topics import Topic, TopicNames, TopicSpec

REPLAY_LEDGER = TopicSpec("pipeline.deadletter.replayed", "deadletter partition:offset",
                          "dead-letter records already replayed (replay runs once)",
                          compacted=True, partitions=1)


class Replayed(BaseModel):
    """A ledger entry: a dead-letter record re-injected, and where it went."""

    replayed_at: datetime
    stage: str
    message_id: str | None = None
    topic: str
    partition: int
    offset: int
    corrected: bool = False


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead-letter record and its position on ``pipeline.deadletter``."""

    partition: int
    offset: int
    record: DeadLetter | None  # None: the record itself is unreadable
    raw: bytes | None = None

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True)
class Selection:
    """Which dead-letter records an operator asked to replay."""

    stage: str | None = None
    message_id: str | None = None
    position: str | None = None
    everything: bool = False

    def is_empty(self) -> bool:
        return not (self.stage or self.message_id or self.position or self.everything)

    def matches(self, letter: StoredDeadLetter) -> bool:
        if letter.record is None:
            return False
        if self.position and letter.position != self.position:
            return False
        if self.stage and letter.record.stage != self.stage:
            return False
        return not (self.message_id and letter.record.message_id != self.message_id)


def parse_dead_letter(partition: int, offset: int, value: bytes | None) -> StoredDeadLetter:
    try:
        record = DeadLetter.model_validate_json(value or b"")
    except ValidationError:
        return StoredDeadLetter(partition, offset, None, value)
    return StoredDeadLetter(partition, offset, record, value)


def plan_replay(letters: Iterable[StoredDeadLetter], replayed: dict[str, Replayed],
                selection: Selection) -> tuple[list[StoredDeadLetter], list[StoredDeadLetter]]:
    """(to replay, already replayed) among the records the selection matches."""
    if selection.is_empty():
        raise ConfigError("say what to replay: --all, --stage STAGE, --id MESSAGE_ID or "
                          "--at PARTITION:OFFSET")
    todo: list[StoredDeadLetter] = []
    done: list[StoredDeadLetter] = []
    for letter in letters:
        if not selection.matches(letter):
            continue
        (done if letter.position in replayed else todo).append(letter)
    return todo, done


def describe(letter: StoredDeadLetter, replayed: Replayed | None, width: int = 100) -> str:
    """One dead-letter record as an operator reads it (two or three lines)."""
    rec = letter.record
    if rec is None:
        return f"{letter.position:>8}  (unreadable dead-letter record)"
    head = (f"{letter.position:>8}  {rec.failed_at:%Y-%m-%d %H:%M:%S}  {rec.stage:<11} "
            f"{rec.error_type}  from {rec.source_topic}"
            + (f"@{rec.partition}:{rec.offset}" if rec.partition is not None else "")
            + (f"  id={rec.message_id}" if rec.message_id else ""))
    error = " ".join(rec.error.split())
    lines = [head, f"{'':10}error: {error[:width]}{'…' if len(error) > width else ''}"]
    if replayed is not None:
        lines.append(f"{'':10}replayed {replayed.replayed_at:%Y-%m-%d %H:%M:%S} → "
                     f"{replayed.topic}@{replayed.partition}:{replayed.offset}"
                     + (" (corrected value)" if replayed.corrected else ""))
    return "\n".join(lines)


async def load(settings: Settings) -> tuple[list[StoredDeadLetter], dict[str, Replayed]]:
    """Every dead-letter record the topic holds, and the replay ledger."""
    names = TopicNames(settings.kafka.topic_prefix)
    async with consumer(settings.kafka) as client:
        records = await read_records(client, names(Topic.DEADLETTER))
        ledger_records = await read_records(client, names(REPLAY_LEDGER.name))
    letters = sorted((parse_dead_letter(r.partition, r.offset, r.value) for r in records),
                     key=lambda d: (d.record.failed_at.timestamp() if d.record else 0,
                                    d.partition, d.offset))
    ledger: dict[str, Replayed] = {}
    for r in ledger_records:  # compacted: the last value of a key wins, a tombstone forgets
        key = r.key.decode() if r.key else ""
        if r.value is None:
            ledger.pop(key, None)
            continue
        try:
            ledger[key] = Replayed.model_validate_json(r.value)
        except ValidationError:
            continue
    return letters, ledger


def original_bytes(letter: DeadLetter, blobs: BlobStore) -> bytes | None:
    value = letter.original_value()
    if value is None and letter.raw_uri:
        value = blobs.get(letter.raw_uri)
    return value


async def replay(settings: Settings, letters: list[StoredDeadLetter], now: datetime,
                 corrected_value: bytes | None = None) -> list[tuple[StoredDeadLetter, Replayed]]:
    """Re-inject ``letters`` into their source topics with their original key; record each."""
    if corrected_value is not None and len(letters) != 1:
        raise ConfigError(f"a corrected value replaces exactly one record; "
                          f"{len(letters)} selected (use --at PARTITION:OFFSET)")
    await ensure_topics(settings.kafka, extra=[REPLAY_LEDGER])
    names = TopicNames(settings.kafka.topic_prefix)
    blobs = BlobStore(settings.blobs.url)
    done: list[tuple[StoredDeadLetter, Replayed]] = []
    async with AckedProducer(settings.kafka) as producer:
        for letter in letters:
            rec = letter.record
            assert rec is not None
            value = corrected_value if corrected_value is not None else original_bytes(rec, blobs)
            topic = names.logical(rec.source_topic)
            # Marked, so that the hop's ingest lets it through although its key is known.
            partition, offset = await producer.send(
                topic, rec.key, value,
                headers=[(REPLAY_HEADER, letter.position.encode())])
            entry = Replayed(replayed_at=now, stage=rec.stage, message_id=rec.message_id,
                             topic=topic, partition=partition, offset=offset,
                             corrected=corrected_value is not None)
            await producer.send(REPLAY_LEDGER.name, letter.position,
                                entry.model_dump_json().encode())
            done.append((letter, entry))
    return done


def as_json(letter: StoredDeadLetter, replayed: Replayed | None) -> str:
    body = letter.record.model_dump(mode="json") if letter.record else {"unreadable": True}
    return json.dumps({"position": letter.position, **body,
                       "replayed": replayed.model_dump(mode="json") if replayed else None},
                      ensure_ascii=False)
