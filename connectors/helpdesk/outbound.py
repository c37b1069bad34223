"""Routed cases → the helpdesk: the consumer loop, its retries and its dead letters.

One record at a time per process, in offset order: a record's offset is confirmed (then
committed) only once the helpdesk answered 2xx. A helpdesk that is away (connection,
timeout, 5xx, 429) is retried with exponential backoff, or after its Retry-After, with the
consumer paused: nothing behind the record is skipped. A 4xx goes to ``pipeline.deadletter``
with the helpdesk's answer, replayable onto its queue after a fix. Counters and the last
error of each helpdesk go to ``pipeline.metrics`` as stage ``helpdesk.<name>``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import datetime

import mode
from pydantic import ValidationError

from connectors.helpdesk.base import Helpdesk, TicketRef
from connectors.helpdesk.case import HelpdeskCase, case_from_envelope
from connectors.helpdesk.chatwoot import Chatwoot
from connectors.helpdesk.config import HelpdeskConfig, RetryConfig
from connectors.helpdesk.consumer import QueueConsumer, QueueRecord
from connectors.helpdesk.errors import HelpdeskRejected, HelpdeskUnavailable
from connectors.helpdesk.webhook import SignedWebhook
from connectors.helpdesk.zammad import Zammad
from connectors.hub import InboundPublisher
from pipeline.blobstore import BlobStore
from pipeline.deadletter import DeadLetter
from pipeline.envelope import Envelope
from pipeline.errors import BrokerError, EnvelopeError
from pipeline.metrics import StageMetrics
from pipeline.settings import Settings
from pipeline.topics import Topic

log = logging.getLogger(__name__)


def build_helpdesks(config: HelpdeskConfig, blobs: BlobStore) -> dict[str, Helpdesk]:
    timeout = config.retry.request_timeout_seconds
    made: dict[str, Helpdesk] = {}
    if config.zammad.enabled:
        made["zammad"] = Zammad(config.zammad, blobs.aget, timeout)
    if config.chatwoot.enabled:
        made["chatwoot"] = Chatwoot(config.chatwoot, timeout)
    if config.webhook.enabled:
        made["webhook"] = SignedWebhook(config.webhook, timeout)
    return made


def backoff_seconds(attempt: int, retry_after: float | None, retry: RetryConfig) -> float:
    """Retry-After when the helpdesk gave one (capped), else doubling from the initial delay."""
    if retry_after is not None:
        return min(retry_after, retry.max_retry_after_seconds)
    return min(retry.initial_backoff_seconds * (2 ** attempt), retry.max_backoff_seconds)


def stage_name(helpdesk: str) -> str:
    return f"helpdesk.{helpdesk}"


class HelpdeskOutbound(mode.Service):
    """Consumes the queues and delivers each case to its helpdesk, once."""

    def __init__(self, settings: Settings, publisher: InboundPublisher, blobs: BlobStore,
                 clock: Callable[[], datetime], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.config = settings.helpdesk
        self.publisher = publisher
        self.now = clock
        self.helpdesks = build_helpdesks(self.config, blobs)
        group = f"{settings.worker.app_id}-{self.config.group_suffix}"
        self.consumer = QueueConsumer(settings.kafka, settings.worker, group)
        started = clock()
        self.metrics = {name: StageMetrics(stage_name(name), started) for name in self.helpdesks}
        self.worker_name = socket.gethostname()
        self.paused = False

    async def on_start(self) -> None:
        await self.consumer.start()
        self.add_future(self._deliver_all())
        self.add_future(self._commit_every_interval())
        self.add_future(self._publish_metrics())
        log.info("event=helpdesk_outbound_started group=%s helpdesks=%s",
                 self.consumer.group_id, ",".join(self.helpdesks))

    async def on_stop(self) -> None:
        await self.consumer.stop()
        await self._publish_snapshots()
        for helpdesk in self.helpdesks.values():
            await helpdesk.close()

    async def _commit_every_interval(self) -> None:
        while not self.should_stop:
            await self.sleep(self.config.commit_interval_seconds)
            await self.consumer.commit_confirmed()

    async def _publish_metrics(self) -> None:
        while not self.should_stop:
            await self.sleep(self.config.metrics_interval_seconds)
            await self._publish_snapshots()

    async def _publish_snapshots(self) -> None:
        for name, metrics in self.metrics.items():
            metrics.info["paused"] = self.paused
            snap = metrics.snapshot(self.worker_name, self.now())
            try:
                await self.publisher.send(Topic.METRICS, stage_name(name),
                                          snap.model_dump_json().encode())
            except BrokerError as exc:
                log.warning("event=helpdesk_metrics_unpublished error=%r", exc)

    async def _deliver_all(self) -> None:
        async for record in self.consumer.records():
            if self.should_stop:
                return
            if not await self.deliver(record):
                return  # stopping in the middle of a retry: the record stays unconfirmed
            self.consumer.confirm(record)

    async def deliver(self, record: QueueRecord) -> bool:
        """Hand one record to its helpdesk; True once it is done with (delivered, skipped or
        dead-lettered), False if the service is stopping before the helpdesk confirmed."""
        try:
            envelope = Envelope.from_bytes(record.value or b"")
            case = case_from_envelope(envelope)
        except (ValidationError, EnvelopeError, ValueError) as exc:
            log.error("event=helpdesk_unreadable topic=%s partition=%d offset=%d error=%r",
                      record.topic, record.partition, record.offset, str(exc)[:200])
            return await self._dead_letter("helpdesk", exc, record, None)
        name = self.config.helpdesk_for(case.queue)
        if name is None or name not in self.helpdesks:
            log.debug("event=helpdesk_queue_not_delivered queue=%s", case.queue)
            return True
        return await self._deliver_with_retries(self.helpdesks[name], case, record)

    async def _deliver_with_retries(self, helpdesk: Helpdesk, case: HelpdeskCase,
                                    record: QueueRecord) -> bool:
        metrics = self.metrics[helpdesk.name]
        metrics.count("in")
        attempt = 0
        try:
            while True:
                try:
                    ref = await (helpdesk.add_follow_up(case) if case.is_follow_up
                                 else helpdesk.create_ticket(case))
                except HelpdeskRejected as exc:
                    metrics.count("rejected")
                    metrics.error(str(exc), self.now())
                    log.error("event=helpdesk_rejected helpdesk=%s case_id=%s message_id=%s "
                              "status=%s", helpdesk.name, case.case_id, case.message_id,
                              exc.status)
                    return await self._dead_letter(stage_name(helpdesk.name), exc, record,
                                                   case.message_id)
                except HelpdeskUnavailable as exc:
                    delay = backoff_seconds(attempt, exc.retry_after, self.config.retry)
                    metrics.count("retried")
                    metrics.error(str(exc), self.now())
                    if not self.paused:
                        self.consumer.pause()
                        self.paused = True
                    log.warning("event=helpdesk_unavailable helpdesk=%s case_id=%s attempt=%d "
                                "retry_in=%.1f error=%r", helpdesk.name, case.case_id,
                                attempt + 1, delay, str(exc)[:200])
                    attempt += 1
                    await self.sleep(delay)
                    if self.should_stop:
                        return False
                    continue
                self._count_delivery(metrics, case, ref)
                return True
        finally:
            if self.paused:
                self.consumer.resume()
                self.paused = False
                log.info("event=helpdesk_resumed helpdesk=%s", helpdesk.name)

    def _count_delivery(self, metrics: StageMetrics, case: HelpdeskCase, ref: TicketRef) -> None:
        kind = "follow_up" if case.is_follow_up else ("created" if ref.created else "existing")
        metrics.count(f"ticket.{kind}")
        metrics.count("out")
        log.info("event=helpdesk_delivered helpdesk=%s kind=%s case_id=%s message_id=%s "
                 "ticket=%s", ref.helpdesk, kind, case.case_id, case.message_id,
                 ref.number or ref.ticket_id)

    async def _dead_letter(self, stage: str, exc: Exception, record: QueueRecord,
                           message_id: str | None) -> bool:
        """True once the dead letter is on the broker; False if stopping before that."""
        letter = DeadLetter.from_failure(
            stage=stage, error=exc, failed_at=self.now(), source_topic=record.topic,
            value=record.value, key=record.key, partition=record.partition,
            offset=record.offset, message_id=message_id)
        if stage in {stage_name(n) for n in self.metrics}:
            self.metrics[stage.removeprefix("helpdesk.")].count("deadletter")
        while True:  # a dead letter not written would lose the case: wait for the broker
            try:
                await self.publisher.dead_letter(letter, record.key.decode("utf-8", "replace")
                                                 if record.key else None)
                return True
            except BrokerError as err:
                log.error("event=helpdesk_deadletter_unwritten error=%r", err)
                await self.sleep(1.0)
                if self.should_stop:
                    return False
