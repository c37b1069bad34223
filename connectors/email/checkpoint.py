"""Where each mailbox stands: its UIDVALIDITY and the last UID taken, kept on Kafka.

Checkpoints live on the compacted topic ``connectors.state`` (key
``email:<user>@<host>/<folder>``), not in a state file: the connector then keeps no local
disk, can restart on any machine, and the checkpoint sits on the same durable, replicated
store as the messages it vouches for. Compaction keeps the last value per mailbox, so
reading it back at start costs one record per mailbox (plus uncompacted tail).

Order of work for one message: publish (broker ack) → flag/move → checkpoint. A crash
between publish and checkpoint re-sends that message on restart with the same source id,
which ingest's idempotency drops; nothing is ever checkpointed before the broker has it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.errors import BrokerError
from pipeline.kafka import client_options
from pipeline.settings import KafkaSettings
from pipeline.topics import Topic, TopicNames


@dataclass(frozen=True)
class Checkpoint:
    uidvalidity: int
    last_uid: int

    def to_bytes(self, at: datetime) -> bytes:
        return json.dumps({"uidvalidity": self.uidvalidity, "last_uid": self.last_uid,
                           "updated_at": at.isoformat()}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        value = json.loads(data)
        return cls(int(value["uidvalidity"]), int(value["last_uid"]))


def checkpoint_key(username: str, host: str, folder: str) -> str:
    return f"email:{username}@{host}/{folder}"


async def read_checkpoints(kafka: KafkaSettings, prefix: str = "email:",
                           timeout: float = 30.0) -> dict[str, Checkpoint]:
    """The latest checkpoint per key on ``connectors.state`` (tombstones remove a key)."""
    topic = TopicNames(kafka.topic_prefix)(Topic.CONNECTOR_STATE)
    consumer = AIOKafkaConsumer(**client_options(kafka), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    found: dict[str, Checkpoint] = {}
    try:
        await consumer.start()
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await consumer.position(tp) < end:
            if loop.time() > deadline:
                raise BrokerError(f"{topic}: could not read checkpoints within {timeout} s")
            batch = await consumer.getmany(tp, timeout_ms=500)
            for record in batch.get(tp, []):
                key = record.key.decode() if record.key else ""
                if not key.startswith(prefix):
                    continue
                if record.value is None:
                    found.pop(key, None)
                else:
                    found[key] = Checkpoint.from_bytes(record.value)
    except KafkaError as exc:
        raise BrokerError(f"cannot read checkpoints from {topic}: {exc!r}") from exc
    finally:
        await consumer.stop()
    return found
