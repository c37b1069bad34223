"""A faust App whose Kafka consumer does not sit on idle fetches.

faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. The embedded broker
answers a fetch only when that wait is over, even when records arrive meanwhile, so every
hop between stages cost ~0.6 s (measured: one ingest hop p50 0.57 s at 1500 ms, 0.054 s at
50 ms). A real Kafka broker answers as soon as data is there; the short wait costs it only
a few more empty fetches on idle partitions.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher.
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", 1500)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class PipelineApp(faust.App):
    """faust.App with a configurable consumer fetch wait."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 100, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)
