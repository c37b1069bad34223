"""The connectors' process: one HTTP server for the webhooks, background pollers, a producer.

Each connector module exposes ``install(hub: ConnectorHub) -> None``: HTTP connectors add
routes to ``hub.web``, polling connectors add a ``mode.Service`` with ``hub.add_service``.
``pipeline run`` runs the hub beside the faust worker; ``pipeline connector NAME`` runs it
alone with only that connector installed.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import datetime

import mode
from aiohttp import web

from connectors.settings import ConnectorSettings
from pipeline.blobstore import BlobStore
from pipeline.clock import utcnow
from pipeline.deadletter import DeadLetter
from pipeline.envelope import Envelope
from pipeline.kafka import AckedProducer
from pipeline.stages import module_exists
from pipeline.topics import Topic

log = logging.getLogger(__name__)

CONNECTORS: dict[str, str] = {
    "chat": "connectors.chat.http",
    "whatsapp": "connectors.twilio.whatsapp",
    "voice": "connectors.twilio.voice",
    "email": "connectors.email.poller",
    "helpdesk": "connectors.helpdesk.connector",
}


def enabled_connectors(settings: ConnectorSettings) -> list[str]:
    """Connectors switched on in the settings (``<name>.enabled``) and installed."""
    flags = {
        "chat": settings.chat.enabled,
        "whatsapp": settings.twilio.enabled,
        "voice": settings.twilio.enabled,
        "email": settings.email.enabled,
        "helpdesk": settings.helpdesk.enabled,
    }
    return [name for name in CONNECTORS if flags[name] and module_exists(CONNECTORS[name])]


class InboundPublisher:
    """Writes connector output to ``inbound.raw`` and returns only once the broker has it."""

    def __init__(self, producer: AckedProducer) -> None:
        self._producer = producer

    async def publish(self, envelope: Envelope) -> tuple[int, int]:
        return await self._producer.send(Topic.INBOUND_RAW, envelope.sender_key,
                                          envelope.to_bytes())

    async def dead_letter(self, record: DeadLetter, key: str | None = None) -> None:
        await self._producer.send(Topic.DEADLETTER, key, record.model_dump_json().encode())

    async def send(self, topic: str, key: str | None, value: bytes | None) -> tuple[int, int]:
        """Any other topic (connector checkpoints, for instance)."""
        return await self._producer.send(topic, key, value)


class ConnectorHub(mode.Service):
    """Owns the producer, the aiohttp server and the pollers of the installed connectors."""

    def __init__(self, settings: ConnectorSettings, names: list[str], *,
                 clock: Callable[[], datetime] = utcnow, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.settings = settings
        self.names = names
        self.now = clock
        self.blobs = BlobStore(settings.blobs.url)
        self.producer = AckedProducer(settings.kafka)
        self.publisher = InboundPublisher(self.producer)
        self.web = web.Application(client_max_size=_largest_body(settings))
        self.web.router.add_get("/healthz", self._health)
        self._runner: web.AppRunner | None = None
        self._pollers: list[mode.Service] = []
        self.port: int | None = None
        for name in names:
            importlib.import_module(CONNECTORS[name]).install(self)

    def add_service(self, service: mode.Service) -> None:
        self._pollers.append(service)

    async def on_start(self) -> None:
        await self.producer.start()
        for poller in self._pollers:
            await self.add_runtime_dependency(poller)
        if len(self.web.router.routes()) > 1:
            self._runner = web.AppRunner(self.web, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.http.host, self.settings.http.port)
            await site.start()
            sockets = site._server.sockets if site._server else []  # type: ignore[attr-defined,union-attr]
            self.port = sockets[0].getsockname()[1] if sockets else self.settings.http.port
            for route in self.web.router.routes():
                info = route.resource.get_info() if route.resource else {}
                path = info.get("path") or info.get("formatter")
                if route.method != "HEAD" and path != "/healthz":
                    log.info("event=endpoint method=%s url=http://%s:%s%s", route.method,
                             self.settings.http.host, self.port, path)
        log.info("event=connectors_started connectors=%s", ",".join(self.names) or "none")

    async def on_stop(self) -> None:
        # Stop taking requests first, then flush the producer: nothing acknowledged is lost.
        if self._runner is not None:
            await self._runner.cleanup()
        # Pollers finish the message in hand (publish, then acknowledge upstream) while the
        # producer still runs; mode would otherwise stop them only after on_stop.
        for poller in self._pollers:
            await poller.stop()
        await self.producer.stop()
        log.info("event=connectors_stopped")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "connectors": self.names})


def _largest_body(settings: ConnectorSettings) -> int:
    # aiohttp refuses larger bodies itself; each connector checks its own, smaller limit.
    return max(settings.chat.max_body_bytes, 1024 * 1024) + 1024
