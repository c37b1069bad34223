"""The producer metadata guard: every topic a client produces to stays in its metadata.

aiokafka's ``AIOKafkaClient._wait_on_metadata(topic)`` adds a topic to the client's list of
topics to refresh only when the topic is missing from the cluster metadata it holds. A
client's first metadata request asks for *every* topic, so the topics that existed then
are never added to that list. The first send to a topic created later (route's
``queue.<name>``) adds it, the next refresh asks for the listed topics only, and the older
topics vanish from the client's metadata: a batch still waiting for them in the
accumulator then has no leader, and metadata refreshes never bring it back. Its record is
never written, nothing is logged, and a stopping worker waits for it until faust gives up.
Seen as a routed case on ``queue.<name>`` but never on ``cases.routed`` (high watermark 0,
the batch's partition without a leader in the producer's metadata) and a ``pipeline run``
ignoring SIGTERM for ~40 s; reproduced deterministically in
``tests/integration/test_kafka_producer_metadata.py``. It does not depend on the broker.

The guard adds every topic produced to to the list before aiokafka looks it up. It wraps
one private aiokafka method, here only; ``tests/unit/test_kafka_gapguard.py`` checks the
internals it relies on.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.client import AIOKafkaClient

log = logging.getLogger(__name__)

_original_wait_on_metadata = AIOKafkaClient._wait_on_metadata


async def _wait_on_metadata_keeping_topic(self: Any, topic: str) -> Any:
    if topic not in self._topics:
        self.add_topic(topic)  # asks for a refresh now, and keeps the topic in later ones
    return await _original_wait_on_metadata(self, topic)


def install() -> None:
    """Wrap aiokafka's ``_wait_on_metadata`` (idempotent)."""
    if AIOKafkaClient._wait_on_metadata is _wait_on_metadata_keeping_topic:
        return
    AIOKafkaClient._wait_on_metadata = _wait_on_metadata_keeping_topic  # type: ignore[method-assign]
