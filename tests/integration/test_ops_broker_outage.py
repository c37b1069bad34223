"""Broker unavailable: the chat connector refuses with a retryable 503 and loses nothing; the
stages resume on their own when the broker is back.

The outage is simulated by freezing the broker process (SIGSTOP, later SIGCONT): the
embedded broker keeps everything in memory, so it cannot be stopped and restarted without
losing the topics. A frozen broker still accepts TCP connections but answers nothing, like a
hung or unreachable one; clients see their requests time out. It stays frozen until the
worker's own requests have timed out and it has dropped its group coordinator (after its
request timeout, set to 8 s here), so coming back means rejoining the group. The test runs its own dedicated
broker, never the session broker other tests share.

Asserted: while frozen, every POST gets 503 with Retry-After (never 202, never 500); after
SIGCONT the same worker process (no restart) carries on, and every message accepted before
the outage plus every message refused during it and re-sent after it reaches a final topic
(``cases.routed``, ``messages.spam`` or ``pipeline.deadletter``), compared by id. A refused
message may also have reached the broker once it thawed (the connector gave up waiting, the
producer had already sent it); the client's retry is then a duplicate that ingest drops by
source id, so it is still one message.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from connectors.chat.contract import sign
from pipeline.broker import EmbeddedBroker
from tests.fixtures.broker import override
from tests.fixtures.kafka_io import KafkaIO
from tests.fixtures.reliability import frozen, read_final, record_id

pytestmark = pytest.mark.slow

SECRET = "outage-secret"
BEFORE = 20  # messages accepted before the outage
DURING = 4  # messages posted while the broker is frozen
QUESTIONS = (
    "Bonjour, la commande {ref} est bloquée en préparation depuis hier.",
    "Hello, invoice INV-2026-{n:04d} shows the wrong VAT rate for our shop.",
    "La caisse affiche « erreur 504 » au moment du paiement, ticket {ref}.",
    "Can you add a second employee to our account? We opened a new shop.",
)


@pytest.fixture(scope="module")
def outage_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker of this module's own: it is frozen, the session broker must not be."""
    log_path = tmp_path_factory.mktemp("outage-broker") / "tansu.log"
    with EmbeddedBroker(log_path=log_path) as running:
        yield running


def chat_body(n: int) -> bytes:
    account = f"ACC-8{n % 5:03d}"
    return json.dumps({
        "message_id": f"outage-{n:04d}", "conversation_id": f"conv-{n}",
        "sent_at": "2026-11-23T10:15:00+01:00",
        "text": QUESTIONS[n % len(QUESTIONS)].format(ref=f"X{n:03d}Q", n=n),
        "user": {"id": f"EMP-{account}", "account_id": account,
                 "email": f"gerant.{n % 5}@fromagerie-durand.fr", "name": "Paul Durand"},
    }).encode()


async def post(session: aiohttp.ClientSession, url: str, n: int) -> tuple[int, dict, str | None]:
    body = chat_body(n)
    async with session.post(url, data=body, headers={
            "Content-Type": "application/json",
            "X-Pipeline-Signature": sign(body, SECRET)}) as response:
        return response.status, await response.json(), response.headers.get("Retry-After")


async def test_connector_answers_503_while_broker_frozen_and_stages_resume(
        settings, outage_broker, pipeline_process, tmp_path: Path):
    # A short worker request timeout (default 30 s) so that the worker notices the outage
    # (requests time out, coordinator dropped) while the connector is still refusing.
    settings = override(settings, kafka={"bootstrap": outage_broker.bootstrap},
                        chat={"secret": SECRET}, worker={"request_timeout_seconds": 8.0})
    kafka_io = KafkaIO(settings)
    await kafka_io.create_topics()
    worker = pipeline_process(["worker"], settings, env={"PIPELINE_TRANSCRIBE_PRELOAD": "false"})
    connector = pipeline_process(["connector", "chat"], settings,
                                 ready="event=connectors_started")
    url = re.search(r"url=(\S+)", connector.wait_for("event=endpoint method=POST")).group(1)

    timeout = aiohttp.ClientTimeout(total=90)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        accepted = {}
        for n in range(BEFORE):
            status, answer, _ = await post(session, url, n)
            assert status == 202, answer
            accepted[n] = answer["id"]

        # Frozen right after those: the worker may still be working on them.
        with frozen(outage_broker):
            during = await asyncio.gather(*(post(session, url, n)
                                            for n in range(BEFORE, BEFORE + DURING)))
            # Frozen until the worker's own requests time out and it drops its group
            # coordinator, so resuming means rejoining the group.
            await asyncio.to_thread(worker.wait_for, "marking coordinator dead", 90)
            assert worker.proc.poll() is None, "the worker died while the broker was frozen"
        assert [status for status, _, _ in during] == [503] * DURING, during
        assert all(retry_after for _, _, retry_after in during), "no Retry-After on a 503"

        # The client retries what was refused, as the 503 tells it to.
        for n in range(BEFORE, BEFORE + DURING):
            status, answer, _ = await post(session, url, n)
            assert status == 202, (n, status, answer)
            accepted[n] = answer["id"]

    expected = set(accepted.values())
    # 180 s: in 2 of ~13 runs the last 3 records dedup wrote after the resume had not
    # reached cases.routed within 90 s (the worker was rejoining its group after its session
    # expired during the freeze); whether they came later is not known yet.
    records = await read_final(kafka_io, lambda ids: expected <= ids, timeout=180)
    ids = Counter(record_id(r) for r in records)
    missing = expected - ids.keys()
    assert not missing, f"{len(missing)} of {len(expected)} accepted messages never came out"
    assert set(ids) == expected, "ids that were never accepted came out"
    assert worker.proc.poll() is None and connector.proc.poll() is None
    assert worker.output().count("event=worker_ready") == 1, "the worker restarted"
    routed = [r.value for r in records if r.topic == "cases.routed"]
    assert {v["source_id"] for v in routed} >= {f"outage-{n:04d}" for n in range(BEFORE)}
    print(f"{len(expected)} messages out; {sum(n - 1 for n in ids.values())} duplicate(s); "
          f"topics {Counter(r.topic for r in records)}")
