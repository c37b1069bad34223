"""The cases hop on the real broker: messages.accepted → dedup → route → queue.<name>
(``cases.updates`` tapped, to watch dedup's decisions).

One worker (``--stages dedup,route``) for the whole story: a customer's order problem opens
a case and lands in the tech queue, the follow-up merges and follows it, a VAT question
opens a deprioritised case, the helpdesk closes the order case (cases.events, re-keyed by
account), a lead edits the rules file while the worker runs (a broken save is refused,
the fixed save takes effect).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.envelope import Channel, Envelope, Identity, Sender
from pipeline.route.commands import replay
from tests.fixtures.broker import tapped

pytestmark = pytest.mark.slow

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # Tuesday 10:00 Paris
RULES = Path("config/routing.yaml").read_text()


def wait_until(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def save(path: Path, text: str) -> None:
    """Save as editors do (write aside, then rename), so the worker never reads half a file."""
    aside = path.with_suffix(".tmp")
    aside.write_text(text)
    os.replace(aside, path)


def accepted(source_id: str, text: str, minutes: float, subject: str | None = None) -> Envelope:
    return Envelope(channel=Channel.EMAIL, source_id=source_id, subject=subject, text=text,
                    received_at=T0 + timedelta(minutes=minutes),
                    sender=Sender(email="claire@boulangerie-martin.fr"),
                    identity=Identity(identified=True, account_id="acct-martin", tier="silver",
                                      country="FR"))


async def test_messages_become_cases_in_agent_queues(settings, kafka_io, pipeline_process,
                                                      tmp_path):
    rules_path = tmp_path / "routing.yaml"
    rules_path.write_text(RULES)
    # The shipped rules name their past messages file, relative to themselves.
    (tmp_path / "category_examples.yaml").write_text(
        Path("config/category_examples.yaml").read_text())
    settings = settings.model_copy(update={"route": settings.route.model_copy(update={
        "rules_path": str(rules_path), "reload_interval_seconds": 0.5})})
    await kafka_io.create_topics()
    order = accepted("m1", "Bonjour, la commande MH38 est bloquée, le logiciel affiche une "
                     "erreur à la validation.", 0, subject="Commande MH38 bloquée")
    follow = accepted("m2", "toujours bloqué sur la commande MH38", 120)
    vat = accepted("m3", "Où configurer la TVA intracommunautaire sur mes factures ?", 130,
                   subject="Question TVA")
    await kafka_io.produce("messages.accepted", [
        ("acct-martin", order.to_bytes()), ("acct-martin", follow.to_bytes()),
        ("acct-martin", order.to_bytes()),  # at-least-once redelivery
        ("acct-martin", vat.to_bytes())])
    worker = pipeline_process(["worker", "--stages", "dedup,route"],
                              tapped(settings, "cases.updates"))

    updates = await kafka_io.read("cases.updates", count=4)
    cases = [(r.value["source_id"], r.value["case"]["action"], r.value["case"]["case_id"])
             for r in updates]
    order_case = cases[0][2]
    assert cases[:3] == [("m1", "opened", order_case), ("m2", "merged", order_case),
                         ("m1", "opened", order_case)], "redelivery: same case, not a new one"
    assert cases[3][1] == "opened" and cases[3][2] != order_case
    assert updates[3].value["case"]["deprioritised"] is True
    assert updates[1].value["case"]["evidence"] == ["shared reference order:MH38"]
    assert {"kind": "order", "value": "MH38"} in updates[0].value["refs"]
    assert all(r.key == "acct-martin" for r in updates)

    tech = await kafka_io.read("queue.tech", count=3)
    later = await kafka_io.read("queue.later", count=1)
    assert [r.value["source_id"] for r in tech] == ["m1", "m2", "m1"]
    assert tech[0].value["routing"]["rule"] == "bugs"
    assert tech[0].value["routing"]["category"] == "bug"
    assert tech[1].value["routing"]["follows_case"] is True
    assert tech[1].value["routing"]["sla_due_at"] == tech[0].value["routing"]["sla_due_at"]
    assert later[0].value["routing"]["rule"] == "one-question-at-a-time"
    routed = await kafka_io.read("cases.routed", count=4)
    assert len(routed) == 4

    # The helpdesk closes both cases: a new message about MH38 opens a new case, and it is
    # not deprioritised (no other case open).
    vat_case = cases[3][2]
    await kafka_io.produce("cases.events", [(case_id, json.dumps({
        "case_id": case_id, "account_id": "acct-martin", "event": "closed"}).encode())
        for case_id in (order_case, vat_case)] + [(vat_case, b'{"event": "closed"}')])
    worker.wait_for(f"event=case_event_applied case_id={vat_case}")
    dead = await kafka_io.read("pipeline.deadletter", count=1)
    assert dead[0].value["stage"] == "dedup" and "account_id" in dead[0].value["error"]

    # A lead saves a broken file: refused, last good rules stay.
    save(rules_path, RULES.replace("queue: tech\n    priority: high\n    take_in_charge: 4h",
                                   "queue: Tech Team"))
    rejected = worker.wait_for("event=rules_rejected")
    assert "routing.yaml:" in rejected and ".queue: Value error" in rejected
    metrics = await kafka_io.read("pipeline.metrics", until=lambda rs: any(
        r.key == "route" and r.value["counters"].get("rules.rejected") for r in rs))
    snapshot = next(r.value for r in metrics
                    if r.key == "route" and r.value["counters"].get("rules.rejected"))
    assert "rules.6.queue" in snapshot["info"]["rules_rejected"]  # rule 6 is "bugs"
    # Then a fixed edit: bugs now go to a new queue "atelier", created on the fly.
    save(rules_path, RULES.replace("queue: tech\n    priority: high\n    take_in_charge: 4h",
                                   "queue: atelier\n    priority: high\n"
                                   "    take_in_charge: 4h"))
    worker.wait_for("event=rules_loaded", timeout=30)
    wait_until(lambda: sum("event=rules_loaded" in line for line in worker.lines) >= 2)

    again = accepted("m4", "La commande MH38 est de nouveau bloquée avec une erreur", 600)
    await kafka_io.produce("messages.accepted", [("acct-martin", again.to_bytes())])
    new_updates = await kafka_io.read("cases.updates", count=5)
    assert new_updates[4].value["case"]["action"] == "opened"
    assert new_updates[4].value["case"]["case_id"] != order_case
    assert new_updates[4].value["case"]["deprioritised"] is False
    atelier = await kafka_io.read("queue.atelier", count=1)
    assert atelier[0].value["source_id"] == "m4"
    assert atelier[0].value["routing"]["rule"] == "bugs"

    # A lead replays the recent cases with the original file: only the MH38 case routed by
    # the edited rules would move back from atelier to tech.
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(RULES)
    report = await replay(settings, str(candidate), hours=24, limit=1000)
    assert report.cases == 3  # m1's case, the VAT case, m4's case (m2 follows m1's case)
    assert dict(report.moved) == {("atelier", "tech"): 1}
    assert "1 would change queue" in report.lines()[0]
