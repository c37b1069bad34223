"""Property test of the chat webhook on the real broker: whatever body and headers arrive,
the answer is never a 5xx while the broker is up, a rejected request leaves no record on
``inbound.raw``, and every accepted one leaves exactly one."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import threading
from collections import Counter

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from connectors.chat.contract import sign
from connectors.hub import ConnectorHub

pytestmark = pytest.mark.slow

SECRET = "s3cret-for-fuzzing"

texts = st.text(max_size=60) | st.sampled_from([
    "Bonjour, la commande MH38 est bloquée.", "The invoice FA-2026-0412 is wrong.", ""])
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
users = st.fixed_dictionaries({}, optional={
    "id": st.text(max_size=5) | scalars, "account_id": st.text(max_size=5) | scalars,
    "email": st.emails() | scalars, "name": texts})
attachments = st.lists(st.fixed_dictionaries({}, optional={
    "filename": st.text(max_size=10) | scalars,
    "content_type": st.sampled_from(["image/png", "audio/ogg", "x", ""]) | scalars,
    "data_base64": st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()) | scalars,
}), max_size=2)
messages = st.fixed_dictionaries({}, optional={
    "message_id": st.text(min_size=1, max_size=12) | scalars,
    "conversation_id": scalars,
    "sent_at": st.sampled_from(["2026-11-23T10:15:00+01:00", "2026-11-23T10:15:00",
                                "lundi", "", 17]),
    "text": texts | scalars,
    "surface": st.sampled_from(["ipad", "selfcare"]) | scalars,
    "page_url": st.just("https://selfcare.example.fr/factures") | scalars,
    "user": users | scalars,
    "attachments": attachments | scalars,
})
valid_messages = st.fixed_dictionaries({
    "message_id": st.uuids().map(str),
    "sent_at": st.just("2026-11-23T10:15:00+01:00"),
    "text": texts,
    "user": st.fixed_dictionaries({"id": st.sampled_from(["u1", "u2"]),
                                   "account_id": st.sampled_from(["hangers-lyon", "acme"])}),
}, optional={"surface": st.sampled_from(["ipad", "selfcare"]), "page_url": st.just(
    "https://selfcare.example.fr/factures"), "attachments": attachments})
bodies = (valid_messages.map(lambda m: json.dumps(m).encode())
          | messages.map(lambda m: json.dumps(m).encode())
          | st.binary(max_size=200)
          | st.text(max_size=100).map(str.encode))
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
signatures = st.sampled_from(["valid", "missing", "garbage"])


class HubThread:
    """The connector hub in its own event loop, as ``pipeline connector chat`` runs it."""

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> ConnectorHub:
            hub = ConnectorHub(settings, ["chat"])
            await hub.start()
            return hub

        self.hub = asyncio.run_coroutine_threadsafe(start(), self.loop).result(60)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.hub.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_chat_endpoint_never_fails_and_records_only_accepted_messages(settings, kafka_io):
    settings = settings.model_copy(update={"chat": settings.chat.model_copy(update={
        "secret": __import__("pydantic").SecretStr(SECRET), "max_body_bytes": 2000})})
    asyncio.run(kafka_io.create_topics())
    running = HubThread(settings)
    accepted: list[str] = []
    statuses: Counter[int] = Counter()
    try:
        @hsettings(max_examples=200, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(body=bodies, signature=signatures, content_type=header_text,
               extra=st.dictionaries(st.from_regex(r"X-[A-Za-z]{1,8}", fullmatch=True),
                                     header_text, max_size=3))
        def post(body: bytes, signature: str, content_type: str, extra: dict[str, str]) -> None:
            headers = {**extra, "Content-Type": content_type}
            if signature == "valid":
                headers[settings.chat.signature_header] = sign(body, SECRET)
            elif signature == "garbage":
                headers[settings.chat.signature_header] = "sha256=" + "0" * 64
            conn = http.client.HTTPConnection("127.0.0.1", running.hub.port, timeout=30)
            try:
                conn.request("POST", settings.chat.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            finally:
                conn.close()
            statuses[response.status] += 1
            assert response.status < 500, (response.status, payload[:200])
            if signature != "valid":
                assert response.status == 401
            if response.status == 202:
                accepted.append(json.loads(payload)["id"])
            else:
                assert response.status in (401, 413, 422), response.status
                assert "error" in json.loads(payload)

        post()
    finally:
        running.stop()
    assert statuses[202] > 0 and statuses[422] > 0, statuses  # both sides were exercised
    records = asyncio.run(kafka_io.read("inbound.raw", count=len(accepted), quiet=1.5,
                                        timeout=30))
    assert Counter(r.value["id"] for r in records) == Counter(accepted), statuses
