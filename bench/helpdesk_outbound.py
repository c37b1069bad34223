"""Helpdesk outbound throughput against the local Zammad contract server, next to a bare client.

    nice -n 10 python bench/helpdesk_outbound.py [N]

One run, one embedded broker, three fresh contract servers (tests/fixtures/helpdesks.py):
(1) a bare aiohttp client POSTing the N tickets one after the other (the floor: one
request per ticket, no idempotency); (2) the same client doing what idempotency costs,
a search by case id then the POST; (3) the connector consuming the N routed cases from
``queue.tech`` and delivering them (search, create, commit), timed from its first ticket
to its last so the consumer group's join is not counted. Same payloads in all three.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.helpdesk.case import case_from_envelope  # noqa: E402
from connectors.helpdesk.zammad import Zammad  # noqa: E402
from connectors.hub import ConnectorHub  # noqa: E402
from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.kafka import AckedProducer, ensure_topics  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402
from pipeline.topics import spec  # noqa: E402
from tests.fixtures.helpdesks import ZAMMAD_TOKEN, ZammadServer, serve  # noqa: E402
from tests.integration.helpdesk_helpers import helpdesk_settings, routed  # noqa: E402


async def bare(server: ZammadServer, payloads: list[tuple[str, dict]], search: bool) -> float:  # type: ignore[type-arg]
    headers = {"Authorization": f"Token token={ZAMMAD_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        start = time.perf_counter()
        for case_id, payload in payloads:
            if search:
                async with session.get(f"{server.url}/api/v1/tickets/search", params={
                        "query": f'support_case_id:"{case_id}"', "expand": "true"}) as r:
                    assert r.status == 200 and not await r.json()
            async with session.post(f"{server.url}/api/v1/tickets", json=payload) as r:
                assert r.status == 201, await r.text()
        return time.perf_counter() - start


async def connector(settings, server: ZammadServer, n: int) -> float:  # type: ignore[no-untyped-def]
    hub = ConnectorHub(settings, ["helpdesk"])
    await hub.start()
    try:
        while not server.tickets:
            await asyncio.sleep(0.001)
        start = time.perf_counter()
        while len(server.tickets) < n:
            await asyncio.sleep(0.001)
        return (time.perf_counter() - start) * n / max(1, n - 1)
    finally:
        await hub.stop()


async def main(n: int) -> None:
    cases = [routed(i, queue="tech") for i in range(n)]
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        base = load_settings(None, kafka={"bootstrap": broker.bootstrap, "topic_prefix": "bench."},
                             blobs={"url": tmp}, http={"port": 0}, chat={"enabled": False})
        await ensure_topics(base.kafka, extra=[spec("queue.tech")])
        async with AckedProducer(base.kafka, linger_ms=5) as producer:
            await asyncio.gather(*(producer.send("queue.tech", e.case.case_id, e.to_bytes())  # type: ignore[union-attr]
                                   for e in cases))
        results = {}
        for label, search in (("bare client, POST only", False),
                              ("bare client, search + POST", True)):
            with serve(ZammadServer()) as server:
                assert isinstance(server, ZammadServer)
                shaper = Zammad(helpdesk_settings(base, server).helpdesk.zammad,
                                read_blob=None, timeout_seconds=5)  # type: ignore[arg-type]
                payloads = []
                for e in cases:
                    case = case_from_envelope(e)
                    payloads.append((case.case_id, shaper.ticket_payload(
                        case, await shaper._article(case, first=True))))
                results[label] = await bare(server, payloads, search)
        with serve(ZammadServer()) as server:
            assert isinstance(server, ZammadServer)
            results["connector (consume, search, POST, commit)"] = await connector(
                helpdesk_settings(base, server), server, n)
            assert len(server.tickets) == n and len({t["support_case_id"]
                                                     for t in server.tickets.values()}) == n
    print(f"{n} tickets, one at a time, local Zammad contract server")
    floor = results["bare client, POST only"]
    for label, seconds in results.items():
        print(f"  {label:<42} {n / seconds:8.0f} tickets/s  {seconds * 1000 / n:6.2f} ms/ticket"
              f"  x{seconds / floor:.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
