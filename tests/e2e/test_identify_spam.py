"""The intake hop (ingest → identify → spam filter) on the real broker, through the real
CLI and a real worker.

Directory imported with ``pipeline directory import``; envelopes produced to inbound.raw;
every input must come out exactly once on messages.accepted or messages.spam, with the
right identity, key and reason. Then the directory changes while the worker runs, a
quarantined message is released, and the per-reason counts show up on pipeline.metrics.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from pipeline.envelope import (
    AppIdentity,
    Attachment,
    AttachmentKind,
    Channel,
    Envelope,
    Sender,
    Thread,
)

pytestmark = pytest.mark.slow

DIRECTORY_YAML = """accounts:
  - id: ACC-1042
    name: Boulangerie Dupont
    tier: standard
    country: FR
    language: fr
    employees:
      - id: EMP-1
        name: Marie Dupont
        emails: [marie.dupont@boulangerie-dupont.fr]
        phones: ["06 12 34 56 78"]
      - id: EMP-2
        name: Karim Benali
        phones: ["07 81 22 33 44"]
      - id: EMP-BAD
        name: Numéro illisible
        phones: ["06 12"]
      - id: EMP-SOPHIE-1
        name: Sophie Martin
        emails: [sophie@cabinet-martin.fr]
  - id: ACC-2077
    name: Maison Lefèvre
    tier: premium
    country: FR
    language: fr
    employees:
      - id: EMP-3
        name: Claire Lefèvre
        emails: [compta@maison-lefevre.fr]
      - id: EMP-SOPHIE-2
        name: Sophie Martin
        emails: [Sophie@Cabinet-Martin.fr]
"""

# The second version: Karim left Dupont (pruned); a new employee registered the number
# that was unknown before.
DIRECTORY_V2 = DIRECTORY_YAML.replace("""      - id: EMP-2
        name: Karim Benali
        phones: ["07 81 22 33 44"]
""", """      - id: EMP-4
        name: Léa Fontaine
        phones: ["+33 6 00 00 00 01"]
""")

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
SCREENSHOT = Attachment(kind=AttachmentKind.IMAGE, content_type="image/png", size=184_220,
                        uri="file:///blobs/ab/screenshot.png")


def env(source_id: str, channel: Channel, text: str = "", **fields: object) -> Envelope:
    return Envelope(channel=channel, source_id=source_id, received_at=NOW, text=text, **fields)


def whatsapp(source_id: str, phone: str, text: str, **fields: object) -> Envelope:
    return env(source_id, Channel.WHATSAPP, text,
               sender=Sender(phone=phone, whatsapp_id=f"whatsapp:{phone}"), **fields)


def email(source_id: str, address: str, text: str, **fields: object) -> Envelope:
    return env(source_id, Channel.EMAIL, text, sender=Sender(email=address), **fields)


# (envelope, expected topic, expected reason or account id)
CASES = [
    (whatsapp("wa-known", "+33612345678", "Où configurer la TVA ?"), "accepted", "ACC-1042"),
    (whatsapp("wa-screenshot", "+33781223344", "😩", attachments=[SCREENSHOT]),
     "accepted", "ACC-1042"),
    (env("vm-known", Channel.VOICEMAIL, sender=Sender(phone="0612345678")), "spam",
     "silent_call"),
    (email("mail-premium", '"Claire" <COMPTA@maison-lefevre.fr>',
           "Bonjour, comment exporter les ventes en CSV ?", subject="Export"),
     "accepted", "ACC-2077"),
    (email("mail-standard-new", "marie.dupont@boulangerie-dupont.fr",
           "Bonjour, je voudrais changer de formule.", subject="Formule"),
     "spam", "email_policy"),
    (email("mail-standard-reply", "marie.dupont@boulangerie-dupont.fr",
           "Toujours bloqué malgré la mise à jour.", subject="Re: [Case #48213]",
           thread=Thread(in_reply_to="<case-48213@support.hangers.fr>")),
     "accepted", "ACC-1042"),
    (whatsapp("wa-unknown", "+33600000001", "Bonjour, ma caisse ne démarre plus"), "spam",
     "unidentified"),
    (email("mail-ambiguous", "sophie@cabinet-martin.fr", "Facture F2024-118 ?"), "spam",
     "unidentified"),
    (whatsapp("wa-mash", "+33612345678", "qsdfqsdfqsdf"), "spam", "incomprehensible"),
    (email("mail-ooo", "compta@maison-lefevre.fr", "Je suis absente jusqu'au 2 décembre.",
           subject="Réponse automatique", headers={"Auto-Submitted": "auto-replied"}),
     "spam", "auto_reply"),
    (env("chat-app", Channel.CHAT, "La synchro caisse ne se fait plus", sender=Sender(
        app_identity=AppIdentity(user_id="EMP-3", account_id="ACC-2077"))),
     "accepted", "ACC-2077"),
]


async def read_outcomes(kafka_io, source_ids: set[str]) -> dict:
    """source_id → its record on messages.accepted or messages.spam, once all have arrived.

    Delivery is at-least-once (a rebalance right after start can replay a few records):
    a replayed message must get the same verdict, which is checked here; dedup downstream
    drops the copy by message id.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    records: list = []
    while loop.time() < deadline:
        records = (await kafka_io.read("messages.accepted", timeout=1.0)
                   + await kafka_io.read("messages.spam", timeout=1.0))
        if source_ids <= {r.value["source_id"] for r in records}:
            break
    by_source: dict = {}
    for record in records:
        first = by_source.setdefault(record.value["source_id"], record)
        assert (record.topic, record.value.get("spam", {}).get("rule")) == (
            first.topic, first.value.get("spam", {}).get("rule")), "replay changed the verdict"
    return by_source


async def test_identify_and_quarantine_on_the_real_broker(settings, kafka_io, pipeline_process,
                                                          pipeline_cli, tmp_path):
    await kafka_io.create_topics()
    directory = tmp_path / "employees.yaml"
    directory.write_text(DIRECTORY_YAML)
    imported = pipeline_cli(["directory", "import", str(directory)], settings)
    # The unreadable phone is reported with its line and skipped; the rest loads.
    assert imported.returncode == 1, imported.stderr
    assert f"{directory}:15: skipped: employee EMP-BAD" in imported.stderr
    assert "5 employee(s) published, 0 unchanged, 0 deleted, 1 row(s) skipped" in imported.stdout

    pipeline_process(["worker", "--stages", "identify,spamfilter"], settings)
    await kafka_io.produce("inbound.raw",
                           [(e.sender_key, e.to_bytes()) for e, _, _ in CASES])

    by_source = await read_outcomes(kafka_io, {e.source_id for e, _, _ in CASES})
    # Every input accounted for, on exactly one of the two topics.
    assert sorted(by_source) == sorted(e.source_id for e, _, _ in CASES)
    for envelope, topic, expected in CASES:
        record = by_source[envelope.source_id]
        assert record.topic == f"messages.{topic}", (envelope.source_id, record.value.get("spam"))
        if topic == "accepted":
            assert record.key == expected  # re-keyed by account
            assert record.value["identity"]["account_id"] == expected
            assert record.value["spam"]["quarantined"] is False
        else:
            spam = record.value["spam"]
            assert spam["quarantined"] and spam["reason"] == expected, spam
            assert spam["rule"].startswith(expected) and spam["explanation"]
        assert [m["stage"] for m in record.value["trace"]] == [
            "ingest", "identify", "spamfilter"]

    known = by_source["wa-known"].value["identity"]
    assert (known["employee_name"], known["tier"], known["matched_by"]) == (
        "Marie Dupont", "standard", "whatsapp")
    ambiguous = by_source["mail-ambiguous"].value
    assert ambiguous["identity"]["ambiguous"] is True
    assert ambiguous["identity"]["candidates"] == ["ACC-1042", "ACC-2077"]
    assert ambiguous["spam"]["rule"] == "unidentified.ambiguous"
    assert by_source["wa-unknown"].key == "whatsapp:whatsapp:+33600000001"

    # Who is that address? (the lookup reads the same topic)
    lookup = pipeline_cli(["directory", "lookup", "SOPHIE@cabinet-martin.fr"], settings)
    assert lookup.returncode == 3 and json.loads(lookup.stdout)["verdict"] == "ambiguous"

    # The directory changes while the worker runs: the next messages see it.
    directory.write_text(DIRECTORY_V2)
    pruned = pipeline_cli(["directory", "import", "--prune", str(directory)], settings)
    # Only the change is published: one new employee, one tombstone.
    assert "1 employee(s) published, 4 unchanged, 1 deleted" in pruned.stdout, pruned.stderr
    later = [whatsapp("wa-now-known", "+33600000001", "Bonjour, ma caisse ne démarre plus"),
             whatsapp("wa-pruned", "+33781223344", "La caisse 2 affiche une erreur 0x1F")]
    await kafka_io.produce("inbound.raw", [(e.sender_key, e.to_bytes()) for e in later])
    by_source = await read_outcomes(kafka_io, {e.source_id for e in later})
    assert by_source["wa-now-known"].topic == "messages.accepted"
    assert by_source["wa-now-known"].value["identity"]["employee_name"] == "Léa Fontaine"
    assert by_source["wa-pruned"].topic == "messages.spam"
    assert by_source["wa-pruned"].value["spam"]["reason"] == "unidentified"

    # A false positive costs a command: release it to messages.accepted.
    released_id = by_source["wa-unknown"].value["id"]
    release = pipeline_cli(["spam", "release", released_id], settings)
    assert release.returncode == 0, release.stderr
    accepted = await kafka_io.read(
        "messages.accepted", until=lambda rs: any(r.value["id"] == released_id for r in rs))
    released = [r for r in accepted if r.value["id"] == released_id]
    assert len(released) == 1 and released[0].value["spam"]["released"] is True
    assert released[0].value["spam"]["reason"] == "unidentified"  # kept for the audit

    # Counts per reason on pipeline.metrics.
    def reasons(rs: list) -> dict:
        snaps = [r.value for r in rs if r.key == "spamfilter"]
        return snaps[-1]["counters"] if snaps else {}

    metrics = await kafka_io.read("pipeline.metrics", until=lambda rs: reasons(rs).get(
        "quarantined.unidentified", 0) >= 3)
    counters = reasons(metrics)
    assert counters["quarantined.unidentified"] >= 3  # >=: a replay after a rebalance recounts
    assert counters["quarantined.incomprehensible"] >= 1
    assert counters["accepted"] >= 6
