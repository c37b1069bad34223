"""Connector checkpoints on the compacted topic ``connectors.state``: one store, one format.

Why a topic and not a state file: a connector runs wherever the operators put it (a
container without a volume, two replicas, a one-off ``--reconcile`` on a laptop); all of
them reach the broker, and a compacted topic keeps the latest checkpoint per key forever.
The key names the source (``email:<user>@<host>/<folder>``,
``twilio-whatsapp:<account>:<number>``); the value is ``{"updated_at": ..., "position":
{...}}``, the position being the connector's own (a UID, a listing time). Values written
before this format (the position's fields at the top level) are still read.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from pipeline.errors import BrokerError
from pipeline.kafka.client import AckedProducer
from pipeline.kafka.reader import read_compacted
from pipeline.runtime_settings import KafkaSettings
from pipeline.topics import Topic, TopicNames


class Checkpoint(BaseModel):
    """Where a connector stands in one source, and when it got there."""

    updated_at: datetime | None = None
    position: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError("a checkpoint is a JSON object")
        if "position" not in value:  # the first formats: the position's fields, flat
            updated = value.pop("updated_at", None)
            value = {"updated_at": updated, "position": value}
        return cls.model_validate(value)


async def load_checkpoints(kafka: KafkaSettings, key_prefix: str,
                           timeout: float = 30.0) -> dict[str, Checkpoint]:
    """The latest checkpoint of every key starting with ``key_prefix``."""
    topic = TopicNames(kafka.topic_prefix)(Topic.CONNECTOR_STATE)
    found: dict[str, Checkpoint] = {}
    for key, value in (await read_compacted(kafka, topic, key_prefix=key_prefix,
                                            timeout=timeout)).items():
        try:
            found[key] = Checkpoint.from_bytes(value)
        except (ValueError, ValidationError) as exc:
            raise BrokerError(f"{topic}: checkpoint {key!r} is unreadable: {exc}") from exc
    return found


async def save_checkpoint(producer: AckedProducer, key: str, position: dict[str, Any],
                          at: datetime) -> None:
    """Write ``key``'s new position; returns once the broker acknowledged it."""
    await producer.send(Topic.CONNECTOR_STATE, key,
                        Checkpoint(updated_at=at, position=position).to_bytes())
