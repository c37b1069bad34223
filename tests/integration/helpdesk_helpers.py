"""Helpers of the helpdesk connector tests: settings, routed cases, a running hub, signing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import aiohttp

from connectors.helpdesk.config import HelpdeskConfig
from connectors.helpdesk.signatures import sign_timestamped, sign_zammad
from connectors.hub import ConnectorHub
from pipeline.envelope import CaseLink, Envelope, Routing
from pipeline.kafka import ensure_topics
from pipeline.settings import Settings
from pipeline.topics import spec
from tests.fixtures.helpdesks import CHATWOOT_TOKEN, ZAMMAD_TOKEN, ChatwootServer, ZammadServer
from tests.fixtures.ops import chat_envelope

ZAMMAD_SECRET = "zammad-trigger-hmac-token"
CHATWOOT_SECRET = "chatwoot-webhook-secret"
GROUPS = {"tech": "Support N2", "billing": "Billing", "urgent": "Support N2"}


def helpdesk_settings(settings: Settings, zammad: ZammadServer | None = None,
                      chatwoot: ChatwootServer | None = None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "enabled": True, "metrics_interval_seconds": 1.0, "commit_interval_seconds": 0.2,
        "retry": {"initial_backoff_seconds": 0.1, "max_backoff_seconds": 1.0,
                  "request_timeout_seconds": 5.0},
    }
    if zammad is not None:
        values["zammad"] = {"enabled": True, "url": zammad.url, "token": ZAMMAD_TOKEN,
                            "groups": GROUPS, "webhook_secret": ZAMMAD_SECRET}
    if chatwoot is not None:
        values["chatwoot"] = {"enabled": True, "url": chatwoot.url, "token": CHATWOOT_TOKEN,
                              "teams": {"tech": 7}, "webhook_secret": CHATWOOT_SECRET}
    if zammad is not None and chatwoot is not None:
        values["queues"] = {"billing": "chatwoot", "*": "zammad"}
    values.update(overrides)
    return settings.model_copy(update={"helpdesk": HelpdeskConfig.model_validate(values)})


def routed(n: int, *, queue: str = "tech", priority: str = "high", action: str = "opened",
           case_id: str | None = None, text: str | None = None) -> Envelope:
    """A case as route writes it on ``queue.<queue>``."""
    envelope = chat_envelope(n)
    if text:
        envelope.text = text
    envelope.case = CaseLink(case_id=case_id or f"C-{n:010X}", action=action,  # type: ignore[arg-type]
                             matched_by="new" if action == "opened" else "reference",
                             evidence=["no open case of this customer matched"])
    envelope.routing = Routing(queue=queue, priority=priority, rule="bugs", category="bug",
                               sla_due_at=datetime(2026, 11, 23, 13, 30, tzinfo=UTC)
                               + timedelta(minutes=n))
    return envelope


async def wait_until(condition: Callable[[], object], timeout: float = 60.0) -> None:
    """Return once ``condition()`` is true; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.05)


async def create_queues(settings: Settings, *queues: str) -> None:
    await ensure_topics(settings.kafka, extra=[spec(f"queue.{q}") for q in queues])


@asynccontextmanager
async def running_hub(settings: Settings) -> AsyncIterator[ConnectorHub]:
    hub = ConnectorHub(settings, ["helpdesk"])
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


async def post(hub: ConnectorHub, path: str, body: bytes, headers: dict[str, str]
               ) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{hub.port}{path}", data=body,
            headers={"Content-Type": "application/json", **headers}) as resp:
        return resp.status, await resp.json()


def zammad_headers(body: bytes, secret: str = ZAMMAD_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature": sign_zammad(body, secret), "X-Zammad-Trigger": "case lifecycle",
            "X-Zammad-Delivery": "d-1"}


def chatwoot_headers(body: bytes, secret: str = CHATWOOT_SECRET) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"X-Chatwoot-Timestamp": stamp,
            "X-Chatwoot-Signature": sign_timestamped(body, stamp, secret)}
