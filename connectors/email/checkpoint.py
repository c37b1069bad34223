"""Where each mailbox stands: its UIDVALIDITY and the last UID taken, kept on Kafka.

Checkpoints live on the compacted topic ``connectors.state`` (key
``email:<user>@<host>/<folder>``), through the shared store ``pipeline.kafka.checkpoints``:
the connector then keeps no local disk, can restart on any machine, and the checkpoint sits
on the same durable store as the messages it vouches for.

Order of work for one message: publish (broker ack) → flag/move → checkpoint. A crash
between publish and checkpoint re-sends that message on restart with the same source id,
which ingest's idempotency drops; nothing is ever checkpointed before the broker has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.kafka.checkpoints import Checkpoint as StoredCheckpoint
from pipeline.kafka.checkpoints import load_checkpoints
from pipeline.runtime_settings import KafkaSettings


@dataclass(frozen=True)
class Checkpoint:
    uidvalidity: int
    last_uid: int

    def to_bytes(self, at: datetime) -> bytes:
        return StoredCheckpoint(updated_at=at, position={
            "uidvalidity": self.uidvalidity, "last_uid": self.last_uid}).to_bytes()

    @classmethod
    def from_stored(cls, stored: StoredCheckpoint) -> Checkpoint:
        return cls(int(stored.position["uidvalidity"]), int(stored.position["last_uid"]))

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        return cls.from_stored(StoredCheckpoint.from_bytes(data))


def checkpoint_key(username: str, host: str, folder: str) -> str:
    return f"email:{username}@{host}/{folder}"


async def read_checkpoints(kafka: KafkaSettings, prefix: str = "email:",
                           timeout: float = 30.0) -> dict[str, Checkpoint]:
    """The latest checkpoint per key on ``connectors.state`` (tombstones remove a key)."""
    return {key: Checkpoint.from_stored(stored)
            for key, stored in (await load_checkpoints(kafka, prefix, timeout)).items()}
