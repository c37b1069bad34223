"""The WhatsApp reconciliation checkpoint: how far Twilio's message list was taken.

Kept on ``connectors.state`` by the shared store (``pipeline.kafka.checkpoints``), key
``twilio-whatsapp:<account>:<number>``, position ``{"listed_until": ..., "injected": N}``.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.kafka import AckedProducer
from pipeline.kafka.checkpoints import load_checkpoints, save_checkpoint
from pipeline.runtime_settings import KafkaSettings


def checkpoint_key(account_sid: str, number: str | None) -> str:
    return f"twilio-whatsapp:{account_sid}:{number or 'all'}"


async def read_checkpoint(kafka: KafkaSettings, key: str, timeout: float = 15.0
                          ) -> datetime | None:
    """The last saved ``listed_until`` for ``key``, or None when there is none yet."""
    found = (await load_checkpoints(kafka, key, timeout=timeout)).get(key)
    if found is None:
        return None
    return datetime.fromisoformat(found.position["listed_until"])


async def save_listing(producer: AckedProducer, key: str, listed_until: datetime,
                       injected: int, at: datetime) -> None:
    await save_checkpoint(producer, key, {"listed_until": listed_until.isoformat(),
                                          "injected": injected}, at)
