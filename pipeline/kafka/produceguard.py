"""The unanswered-partition guard: a produced batch the broker did not answer is sent again.

A produce request carries one batch per partition; aiokafka settles each batch from the
partition's entry in the response and skips batches the response does not mention, so such
a batch's future never completes. Its record is never written, nothing is logged, and at
shutdown the producer's flush waits for it until faust gives up (the "~40 s ignoring
SIGTERM"). The embedded broker answers some produce requests without an entry for every
partition: seen as a routed case that reached ``queue.<name>`` but never ``cases.routed``
(high watermark 0 on every partition) in about one run of three of
``tests/e2e/test_voicemail_run.py``.

This guard re-enqueues every batch a response left unanswered (a retry, as for a retriable
error: at-least-once, and the stages are idempotent by message id), logging
``event=produce_unanswered``. A real Kafka broker answers every partition, so there it never
fires. Like ``gapguard`` it patches one private aiokafka class (``SendProduceReqHandler``,
looked up by the sender as a module global), only here, after checking the version.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.errors import KafkaTimeoutError
from aiokafka.producer import sender as _sender
from aiokafka.structs import TopicPartition

log = logging.getLogger(__name__)

_Original = _sender.SendProduceReqHandler


class UnansweredCount:
    """Batches re-sent because a response left them out, in this process."""

    value = 0


class CompleteProduceReqHandler(_Original):  # type: ignore[misc, valid-type]
    """aiokafka's produce handler, retrying the batches a response does not mention."""

    def handle_response(self, response: Any) -> None:
        super().handle_response(response)
        answered = {TopicPartition(topic, entry[0]) for topic, entries in response.topics
                    for entry in entries}
        for tp, batch in self._batches.items():
            if tp in answered or batch.future.done() or batch in self._to_reenqueue:
                continue
            UnansweredCount.value += 1
            if batch.expired():
                batch.failure(exception=KafkaTimeoutError(
                    f"{tp}: the broker never answered for this batch"))
                continue
            log.warning("event=produce_unanswered topic=%s partition=%d action=retry",
                        tp.topic, tp.partition)
            self._to_reenqueue.append(batch)


def install() -> None:
    """Put the guard into aiokafka's sender (idempotent; the version is checked by gapguard)."""
    _sender.SendProduceReqHandler = CompleteProduceReqHandler  # type: ignore[misc]
