"""The whole pipeline through `pipeline run` on the real broker: connectors to agent queues.

A directory is imported, then customers write on the chat (signed) and on WhatsApp (by hand
with `pipeline send`); every message comes out either routed to a queue or quarantined
with a reason, and a follow-up on the same order joins the case it continues.
"""

from __future__ import annotations

import json
import re

import aiohttp
import pytest

from connectors.chat.contract import sign
from tests.fixtures.broker import override

pytestmark = pytest.mark.slow

SECRET = "full-pipeline-secret"
DIRECTORY = """\
accounts:
  - id: ACC-1042
    name: Boulangerie Dupont
    tier: premium
    country: FR
    language: fr
    employees:
      - id: EMP-1042-1
        name: Marie Dupont
        emails: [marie.dupont@boulangerie-dupont.fr]
        phones: ["06 12 34 56 78"]
"""


def chat(message_id: str, text: str) -> bytes:
    return json.dumps({
        "message_id": message_id, "sent_at": "2026-11-23T10:15:00+01:00", "text": text,
        "user": {"id": "EMP-1042-1", "account_id": "ACC-1042",
                 "email": "marie.dupont@boulangerie-dupont.fr", "name": "Marie Dupont"},
    }).encode()


async def test_messages_end_routed_or_quarantined(settings, kafka_io, pipeline_process,
                                                  pipeline_cli, tmp_path):
    settings = override(settings, chat={"secret": SECRET})
    await kafka_io.create_topics()
    directory = tmp_path / "employees.yaml"
    directory.write_text(DIRECTORY)
    imported = pipeline_cli(["directory", "import", str(directory)], settings)
    assert imported.returncode == 0, imported.stderr

    run = pipeline_process(["run"], settings, env={"PIPELINE_TRANSCRIBE_PRELOAD": "false"},
                           timeout=90)
    url = re.search(r"url=(\S+/chat/messages)", run.wait_for("/chat/messages")).group(1)

    async with aiohttp.ClientSession() as session:
        ids = {}
        for message_id, text in [
            ("c-1", "Bonjour, la commande MH38 est bloquée en préparation, impossible de "
                    "l'expédier"),
            ("c-2", "Toujours bloqué sur la commande MH38, pouvez-vous regarder ?"),
        ]:
            body = chat(message_id, text)
            async with session.post(url, data=body,
                                    headers={"X-Pipeline-Signature": sign(body, SECRET)}) as r:
                assert r.status == 202
                ids[message_id] = (await r.json())["id"]
    for source_id, sender, text in [
        ("wa-known", "whatsapp:+33612345678", "Bonjour, où configurer la TVA sur la caisse ?"),
        ("wa-unknown", "whatsapp:+33799887766", "Bonjour, je voudrais un devis"),
    ]:
        sent = pipeline_cli(["send", "--channel", "whatsapp", "--from", sender, "--text", text,
                             "--id", source_id], settings)
        assert sent.returncode == 0, sent.stderr
        ids[source_id] = json.loads(sent.stdout)["id"]

    routed = await kafka_io.read("cases.routed", timeout=90, until=lambda rs: {
        r.value["id"] for r in rs} >= {ids["c-1"], ids["c-2"], ids["wa-known"]})
    spam = await kafka_io.read("messages.spam", timeout=30, until=lambda rs: any(
        r.value["id"] == ids["wa-unknown"] for r in rs))

    by_id = {r.value["id"]: r.value for r in routed}
    quarantined = {r.value["id"]: r.value for r in spam}
    # Every input is accounted for: routed or quarantined, never both, never lost.
    assert set(ids.values()) == set(by_id) | set(quarantined)
    assert not set(by_id) & set(quarantined)

    first, follow_up, known = by_id[ids["c-1"]], by_id[ids["c-2"]], by_id[ids["wa-known"]]
    assert first["case"]["action"] == "opened"
    assert follow_up["case"]["action"] == "merged"
    assert follow_up["case"]["case_id"] == first["case"]["case_id"]
    assert {"kind": "order", "value": "MH38"} in first["refs"]
    assert known["identity"]["account_id"] == "ACC-1042"
    assert known["identity"]["matched_by"]
    assert known["case"]["case_id"] != first["case"]["case_id"]  # another subject
    assert known["case"]["deprioritised"]  # one question at a time
    for case in (first, known):
        assert case["routing"]["queue"] and case["routing"]["rule"]
        assert case["routing"]["sla_due_at"]
    # Two hops for a text message: intake, then cases (no transcription for text).
    assert [m["stage"] for m in first["trace"]] == [
        "ingest", "identify", "spamfilter", "dedup", "route"]
    assert quarantined[ids["wa-unknown"]]["spam"]["reason"] == "unidentified"

    queue = first["routing"]["queue"]
    in_queue = await kafka_io.read(f"queue.{queue}", until=lambda rs: any(
        r.value["id"] == ids["c-1"] for r in rs))
    assert any(r.key == "ACC-1042" for r in in_queue)
