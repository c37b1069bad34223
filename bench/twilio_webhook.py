"""WhatsApp webhook throughput against the embedded broker, next to a raw acked produce.

    python bench/twilio_webhook.py [N]

Measures, in one run on one broker: (1) raw ``AckedProducer.send`` of N envelopes one after
the other (what the webhook must wait for anyway), (2) N signed text webhooks posted one after
the other (Twilio sends one at a time per conversation), (3) the same with 16 in flight. The
ratios say what the HTTP server, the form parsing and the signature check cost on top of the
broker's acknowledgement.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.hub import ConnectorHub  # noqa: E402
from connectors.twilio.config import TwilioConfig  # noqa: E402
from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.envelope import Channel, Envelope, Sender  # noqa: E402
from pipeline.kafka import AckedProducer, ensure_topics  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402
from pipeline.topics import Topic  # noqa: E402

TOKEN = "9c1e5a7d2b4f6e8a0c3d5f7b9e1a2c4d"
PUBLIC = "https://support.example.com/hooks"


def form(i: int) -> dict[str, str]:
    return {"MessageSid": f"SM{i:032d}", "AccountSid": "AC" + "3f" * 16,
            "From": f"whatsapp:+336{i % 1000:08d}", "To": "whatsapp:+33186950000",
            "ProfileName": "Claire Martin", "NumMedia": "0",
            "Body": f"Bonjour, la commande MH{i % 90 + 10} est bloquée, merci de regarder."}


async def main(n: int) -> None:
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            None, kafka={"bootstrap": broker.bootstrap, "embedded": True, "topic_prefix": "bench."},
            blobs={"url": tmp}, http={"port": 0}, chat={"enabled": False})
        settings = settings.model_copy(update={"twilio": TwilioConfig(
            enabled=True, account_sid="AC" + "3f" * 16, auth_token=TOKEN,
            public_base_url=PUBLIC, reconcile_interval_seconds=0)})
        await ensure_topics(settings.kafka)

        async with AckedProducer(settings.kafka) as producer:
            envs = [Envelope(channel=Channel.WHATSAPP, source_id=f"raw{i}",
                             received_at=datetime.now(UTC), sender=Sender(phone="+33612345678"),
                             text=form(i)["Body"]) for i in range(n)]
            start = time.perf_counter()
            for env in envs:
                await producer.send(Topic.INBOUND_RAW, env.sender_key, env.to_bytes())
            raw = n / (time.perf_counter() - start)

        hub = ConnectorHub(settings, ["whatsapp"])
        await hub.start()
        validator = RequestValidator(TOKEN)
        url = f"http://127.0.0.1:{hub.port}/twilio/whatsapp"
        try:
            async with aiohttp.ClientSession() as session:
                async def post(i: int) -> None:
                    params = form(i)
                    sig = validator.compute_signature(PUBLIC + "/twilio/whatsapp", params)
                    async with session.post(url, data=params,
                                            headers={"X-Twilio-Signature": sig}) as resp:
                        assert resp.status == 200, resp.status

                start = time.perf_counter()
                for i in range(n):
                    await post(i)
                serial = n / (time.perf_counter() - start)

                sem = asyncio.Semaphore(16)

                async def bounded(i: int) -> None:
                    async with sem:
                        await post(n + i)

                start = time.perf_counter()
                await asyncio.gather(*(bounded(i) for i in range(n)))
                concurrent = n / (time.perf_counter() - start)
        finally:
            await hub.stop()

    print(f"messages per run: {n}")
    print(f"raw acked produce, sequential:     {raw:8.1f} msg/s")
    print(f"signed webhook, sequential:        {serial:8.1f} msg/s  ({serial / raw:.2f} x raw)")
    print(f"signed webhook, 16 in flight:      {concurrent:8.1f} msg/s  "
          f"({concurrent / raw:.2f} x raw)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
