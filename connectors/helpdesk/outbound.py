"""Routed cases → the helpdesk: the consumer loop, its retries and its dead letters.

One record at a time per process, in offset order: a record's offset is confirmed (then
committed) only once the helpdesk answered 2xx. A helpdesk that is away (connection,
timeout, 5xx, 429) is retried with exponential backoff, or after its Retry-After, with the
consumer paused: nothing behind the record is skipped. A 4xx goes to ``pipeline.deadletter``
with the helpdesk's answer, replayable onto its queue after a fix. Counters and the last
error of each helpdesk go to ``pipeline.metrics`` as stage ``helpdesk.<name>``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar, get_args

import mode
from pydantic import ValidationError

from connectors.helpdesk.base import Helpdesk, TicketRef
from connectors.helpdesk.case import HelpdeskCase, case_from_envelope
from connectors.helpdesk.chatwoot import Chatwoot
from connectors.helpdesk.config import HelpdeskConfig, HelpdeskName, RetryConfig
from connectors.helpdesk.errors import HelpdeskRejected, HelpdeskUnavailable
from connectors.helpdesk.webhook import SignedWebhook
from connectors.helpdesk.zammad import Zammad
from connectors.hub import InboundPublisher
from connectors.settings import ConnectorSettings
from pipeline.blobstore import BlobStore
from pipeline.caseevents import CaseEvent
from pipeline.deadletter import DeadLetter
from pipeline.envelope import Envelope
from pipeline.errors import BrokerError, ConfigError, EnvelopeError
from pipeline.kafka.group import GroupConsumer, GroupRecord
from pipeline.metrics import StageMetrics
from pipeline.topics import QUEUE_TOPIC_PREFIX, Topic

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


HELPDESK_NAMES = frozenset(get_args(HelpdeskName))
T = TypeVar("T")
# What _with_retries returns instead of a result.
DEAD_LETTERED = object()
STOPPING = object()


def stage_name(helpdesk: str) -> str:
    return f"helpdesk.{helpdesk}"


class HelpdeskOutbound(mode.Service):
    """Consumes the queues and delivers each case to its helpdesk, once."""

    def __init__(self, settings: ConnectorSettings, publisher: InboundPublisher, blobs: BlobStore,
                 clock: Callable[[], datetime], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.config = settings.helpdesk
        self.publisher = publisher
        self.now = clock
        self.helpdesks = build_helpdesks(self.config, blobs)
        if not self.helpdesks:
            # Consuming without a helpdesk would commit every queue's cases as handled.
            raise ConfigError("no helpdesk to deliver to: set helpdesk.enabled and enable "
                              "helpdesk.zammad, helpdesk.chatwoot or helpdesk.webhook")
        group = f"{settings.worker.app_id}-{self.config.group_suffix}"
        # cases.events too: a merge decided outside the helpdesk is mirrored into it.
        self.consumer = GroupConsumer(settings.kafka, settings.worker, group,
                                      prefixes=[QUEUE_TOPIC_PREFIX], topics=[Topic.CASE_EVENTS])
        self._undelivered_queues: set[str] = set()
        started = clock()
        self.metrics = {name: StageMetrics(stage_name(name), started) for name in self.helpdesks}
        self.worker_name = socket.gethostname()
        self.paused = False
        self._loops: list[asyncio.Future[None]] = []

    async def on_start(self) -> None:
        await self.consumer.start()
        self._loops = [asyncio.ensure_future(c) for c in (
            self._deliver_all(), self._commit_every_interval(), self._publish_metrics())]
        log.info("event=helpdesk_outbound_started group=%s helpdesks=%s",
                 self.consumer.group_id, ",".join(self.helpdesks))

    async def on_stop(self) -> None:
        # The loops end first (a case in flight stays unconfirmed and comes again), then
        # the consumer commits what the helpdesk confirmed and leaves the group.
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
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

    async def deliver(self, record: GroupRecord) -> bool:
        """Hand one record to its helpdesk; True once it is done with (delivered, skipped or
        dead-lettered), False if the service is stopping before the helpdesk confirmed."""
        if record.topic == Topic.CASE_EVENTS:
            return await self._mirror_merge(record)
        try:
            envelope = Envelope.from_bytes(record.value or b"")
            case = case_from_envelope(envelope)
        except (ValidationError, EnvelopeError, ValueError) as exc:
            log.error("event=helpdesk_unreadable topic=%s partition=%d offset=%d error=%r",
                      record.topic, record.partition, record.offset, str(exc)[:200])
            return await self._dead_letter("helpdesk", exc, record, None)
        name = self.config.helpdesk_for(case.queue)
        if name is None or name not in self.helpdesks:
            if case.queue not in self._undelivered_queues:
                self._undelivered_queues.add(case.queue)
                log.info("event=helpdesk_queue_not_delivered queue=%s (helpdesk.queues)",
                         case.queue)
            return True
        helpdesk = self.helpdesks[name]
        self.metrics[name].count("in")
        call = helpdesk.add_follow_up if case.is_follow_up else helpdesk.create_ticket
        outcome = await self._with_retries(helpdesk, lambda: call(case), record, case.case_id,
                                           case.message_id)
        if isinstance(outcome, TicketRef):
            self._count_delivery(self.metrics[name], case, outcome)
        return outcome is not STOPPING

    async def _mirror_merge(self, record: GroupRecord) -> bool:
        """A "merged" case event that no helpdesk sent (dedup, an operator): merge there too.

        Events a helpdesk's own webhook produced (``by`` = ``zammad:…``) are already merged in
        it and are skipped, so a merge never echoes back and forth.
        """
        try:
            event = CaseEvent.model_validate_json(record.value or b"")
        except ValidationError:
            return True  # dedup dead-letters invalid events; nothing to add here
        if event.event != "merged" or not event.into_case_id:
            return True
        source = (event.by or "").split(":", 1)[0]
        if source in HELPDESK_NAMES:
            if source in self.metrics:
                self.metrics[source].count("merge.reported")
            return True
        into = event.into_case_id
        for name, helpdesk in self.helpdesks.items():
            outcome = await self._with_retries(
                helpdesk, lambda h=helpdesk: h.merge(event.case_id, into),  # type: ignore[misc]
                record, event.case_id, None)
            if outcome is STOPPING:
                return False
            merged = outcome is True
            self.metrics[name].count("merge.done" if merged else "merge.not_possible")
            log.info("event=helpdesk_merge helpdesk=%s case_id=%s into=%s merged=%s", name,
                     event.case_id, into, merged)
        return True

    async def _with_retries(self, helpdesk: Helpdesk, call: Callable[[], Awaitable[T]],
                            record: GroupRecord, case_id: str, message_id: str | None
                            ) -> T | object:
        """``call()``'s result; ``DEAD_LETTERED`` after a 4xx; ``STOPPING`` if stopped
        while waiting for the helpdesk to come back."""
        metrics = self.metrics[helpdesk.name]
        attempt = 0
        try:
            while True:
                try:
                    return await call()
                except HelpdeskRejected as exc:
                    metrics.count("rejected")
                    metrics.error(str(exc), self.now())
                    log.error("event=helpdesk_rejected helpdesk=%s case_id=%s message_id=%s "
                              "status=%s", helpdesk.name, case_id, message_id, exc.status)
                    written = await self._dead_letter(stage_name(helpdesk.name), exc, record,
                                                      message_id)
                    return DEAD_LETTERED if written else STOPPING
                except HelpdeskUnavailable as exc:
                    delay = backoff_seconds(attempt, exc.retry_after, self.config.retry)
                    metrics.count("retried")
                    metrics.error(str(exc), self.now())
                    if not self.paused:
                        self.consumer.pause()
                        self.paused = True
                    log.warning("event=helpdesk_unavailable helpdesk=%s case_id=%s attempt=%d "
                                "retry_in=%.1f error=%r", helpdesk.name, case_id, attempt + 1,
                                delay, str(exc)[:200])
                    attempt += 1
                    await self.sleep(delay)
                    if self.should_stop:
                        return STOPPING
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

    async def _dead_letter(self, stage: str, exc: Exception, record: GroupRecord,
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
