"""Connection options, topic creation and the acknowledged producer of the Kafka edge.

aiokafka's errors are translated to BrokerError here so callers never import aiokafka.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from pipeline.errors import BrokerError
from pipeline.kafka import gapguard, metadataguard
from pipeline.runtime_settings import KafkaSettings
from pipeline.topics import CATALOGUE, DAY_MS, TopicNames, TopicSpec

log = logging.getLogger(__name__)


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """aiokafka connection keywords (bootstrap, security) from the settings.

    Every client of the project is made from these, so this is also where the producer
    metadata guard is installed and the offset-gap guard switched on for the embedded
    broker."""
    if not kafka.bootstrap:
        raise BrokerError("no broker configured (kafka.bootstrap is empty)")
    metadataguard.install()
    gapguard.configure(kafka.gap_guard_enabled, kafka.gap_patience_seconds)
    opts: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism:
        opts["sasl_mechanism"] = kafka.sasl_mechanism
        opts["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            opts["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return opts


def topic_config(entry: TopicSpec, kafka: KafkaSettings) -> dict[str, str]:
    if entry.compacted:
        return {"cleanup.policy": "compact"}
    retention = entry.retention_ms or int(kafka.retention_days * DAY_MS)
    return {"cleanup.policy": "delete", "retention.ms": str(retention)}


async def ensure_topics(kafka: KafkaSettings, extra: list[TopicSpec] | None = None,
                        timeout: float = 30.0) -> list[str]:
    """Create the catalogue's topics (and ``extra``) that do not exist yet; return the created."""
    names = TopicNames(kafka.topic_prefix)
    admin = AIOKafkaAdminClient(**client_options(kafka), request_timeout_ms=int(timeout * 1000))
    created: list[str] = []
    try:
        await _retry_connect(admin.start, timeout)
        existing = set(await admin.list_topics())
        wanted = [*CATALOGUE, *(extra or [])]
        new = [
            NewTopic(
                name=names(entry.name),
                num_partitions=entry.partitions or kafka.partitions,
                replication_factor=kafka.replication_factor,
                topic_configs=topic_config(entry, kafka),
            )
            for entry in wanted
            if names(entry.name) not in existing
        ]
        for topic in new:
            try:
                await admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # another process created it meanwhile
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics on {kafka.bootstrap}: {exc}") from exc
    finally:
        await admin.close()
    if created:
        log.info("event=topics_created count=%d prefix=%r", len(created), kafka.topic_prefix)
    return created


async def _retry_connect(start: Any, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await start()
            return
        except KafkaError as exc:
            if loop.time() > deadline:
                raise BrokerError(f"broker unreachable: {exc}") from exc
            await asyncio.sleep(0.5)


class AckedProducer:
    """Produce one record and wait for the broker's acknowledgement.

    Connectors answer their source (HTTP 2xx, IMAP flag) only after ``send`` returns, so a
    record is never acknowledged upstream before Kafka has it.
    """

    def __init__(self, kafka: KafkaSettings, *, linger_ms: int = 0) -> None:
        self._kafka = kafka
        self._linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self.names = TopicNames(kafka.topic_prefix)

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            **client_options(self._kafka),
            acks="all",
            enable_idempotence=False,  # the embedded broker has no InitProducerId
            linger_ms=self._linger_ms,
            request_timeout_ms=10_000,
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise BrokerError(f"cannot connect producer to {self._kafka.bootstrap}: {exc}") from exc
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, topic: str, key: bytes | str | None, value: bytes | None,
                   timeout: float = 15.0, headers: list[tuple[str, bytes]] | None = None
                   ) -> tuple[int, int]:
        """Send to a logical topic; return (partition, offset) once acknowledged."""
        if self._producer is None:
            raise BrokerError("producer not started")
        key_bytes = key.encode() if isinstance(key, str) else key
        try:
            meta = await asyncio.wait_for(
                self._producer.send_and_wait(self.names(topic), value, key=key_bytes,
                                            headers=headers), timeout)
        except (TimeoutError, KafkaError) as exc:
            raise BrokerError(f"broker did not acknowledge record on {topic}: {exc!r}") from exc
        return meta.partition, meta.offset

    async def __aenter__(self) -> AckedProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
