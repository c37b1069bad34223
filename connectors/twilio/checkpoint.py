"""Reconciliation checkpoints on the compacted ``connectors.state`` topic.

Why the topic and not a state file: the connector runs wherever the operators put it
(a container without a volume, two replicas behind a load balancer, a one-off
``--reconcile`` on a laptop); all of them already reach the broker, and a compacted
one-partition topic keeps the latest checkpoint per key forever at no cost. Reading it
means scanning that small topic to its end; the last value for our key wins.
"""

from __future__ import annotations

import json
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.errors import BrokerError
from pipeline.kafka import AckedProducer, client_options
from pipeline.settings import KafkaSettings
from pipeline.topics import Topic, TopicNames


def checkpoint_key(account_sid: str, number: str | None) -> str:
    return f"twilio-whatsapp:{account_sid}:{number or 'all'}"


async def read_checkpoint(kafka: KafkaSettings, key: str, timeout: float = 15.0
                          ) -> datetime | None:
    """The last saved ``listed_until`` for ``key``, or None when there is none yet."""
    topic = TopicNames(kafka.topic_prefix)(Topic.CONNECTOR_STATE)
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False,
                                group_id=None, request_timeout_ms=int(timeout * 1000))
    found: datetime | None = None
    try:
        await consumer.start()
        partitions = consumer.partitions_for_topic(topic) or {0}
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=int(timeout * 1000))
            if not batch:
                raise BrokerError(f"{topic}: no records within {timeout} s")
            for tp, records in batch.items():
                for record in records:
                    if record.key == key.encode():
                        found = (None if record.value is None else datetime.fromisoformat(
                            json.loads(record.value)["listed_until"]))
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
    except KafkaError as exc:
        raise BrokerError(f"cannot read checkpoint {key} from {topic}: {exc!r}") from exc
    finally:
        await consumer.stop()
    return found


async def save_checkpoint(producer: AckedProducer, key: str, listed_until: datetime,
                          injected: int) -> None:
    value = {"listed_until": listed_until.isoformat(), "injected": injected}
    await producer.send(Topic.CONNECTOR_STATE, key, json.dumps(value).encode())
