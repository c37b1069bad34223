"""How fast the email connector drains a mailbox, against a bare imapclient fetch loop.

Runs dovecot and the embedded broker locally, APPENDs N support emails (every 5th with a
PNG and a WAV attachment), then measures in the same run:
  1. raw: one imapclient connection fetching every message (BODY.PEEK[]), no parsing;
  2. connector: ConnectorHub(["email"]) from start until all N are on inbound.raw
     (parse, blob store, acknowledged publish, flag, checkpoint per message).
Usage: python bench/email_poller.py [N]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.email.config import EmailConfig  # noqa: E402
from connectors.hub import ConnectorHub  # noqa: E402
from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.kafka import ensure_topics  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402
from tests import email_samples as samples  # noqa: E402
from tests.fixtures.dovecot import PASSWORD, running_dovecot  # noqa: E402
from tests.fixtures.kafka_io import KafkaIO  # noqa: E402


def raw_fetch(dovecot, user: str) -> float:
    started = time.perf_counter()
    client = dovecot.client(user)
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["ALL"])
    for i in range(0, len(uids), 20):
        client.fetch(uids[i:i + 20], ["BODY.PEEK[]"])
    client.logout()
    return time.perf_counter() - started


async def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-email-"))
    with EmbeddedBroker(log_path=tmp / "tansu.log") as broker, running_dovecot() as dovecot:
        user = dovecot.next_user()
        client = dovecot.client(user)
        for i in range(n):
            client.append("INBOX", samples.with_attachments().replace(
                b"<attach@", f"<attach-{i}@".encode()) if i % 5 == 0 else samples.plain(i))
        client.logout()
        settings = load_settings(
            None, kafka={"bootstrap": broker.bootstrap, "embedded": True, "topic_prefix": "bench.",
                         "partitions": 2},
            blobs={"url": str(tmp / "blobs")})
        settings = settings.model_copy(update={"email": EmailConfig(
            enabled=True, host=dovecot.host, port=dovecot.port, security="plain", username=user,
            password=PASSWORD, fetch_batch=20)})
        await ensure_topics(settings.kafka)
        raw_s = await asyncio.to_thread(raw_fetch, dovecot, user)

        io = KafkaIO(settings)
        hub = ConnectorHub(settings, ["email"])
        started = time.perf_counter()
        await hub.start()
        records = await io.read("inbound.raw", count=n, timeout=300)
        connector_s = time.perf_counter() - started
        await hub.stop()
    print(f"messages: {n} (every 5th with 2 attachments)")
    print(f"raw imapclient fetch:  {raw_s:6.2f} s  {n / raw_s:8.1f} msg/s")
    print(f"connector end to end:  {connector_s:6.2f} s  {n / connector_s:8.1f} msg/s  "
          f"({len(records)} on inbound.raw)")
    print(f"ratio connector/raw throughput: {raw_s / connector_s:.3f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
