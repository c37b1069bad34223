"""The project's Kafka client edge: the only package that imports aiokafka (besides faust's
own wiring in ``pipeline/faust_app.py``).

- ``client``: connection options from the settings, topic creation, the acknowledged
  producer;
- ``reader``: bounded reads, a follower, a compacted view (they never trust end offsets
  alone: see its docstring);
- ``checkpoints``: the connectors' checkpoints on ``connectors.state``;
- ``gapguard``: keeps every consumer of the process from skipping an offset the embedded
  broker has not stored yet.

aiokafka's errors become ``BrokerError`` here.
"""

from pipeline.kafka.client import AckedProducer, client_options, ensure_topics, topic_config
from pipeline.kafka.reader import (
    ConsumerRecord,
    PartitionSpan,
    TopicPartition,
    admin,
    consumer,
    fetched_ends,
    follow,
    partitions_of,
    read_compacted,
    read_records,
    spans,
    started_consumer,
    true_ends,
    wait_for_partitions,
)

__all__ = [
    "AckedProducer", "ConsumerRecord", "PartitionSpan", "TopicPartition", "admin",
    "client_options", "consumer", "ensure_topics", "fetched_ends", "follow", "partitions_of",
    "read_compacted", "read_records", "spans", "started_consumer", "topic_config", "true_ends",
    "wait_for_partitions",
]
