"""The helpdesk connector against the real broker and local helpdesk contract servers.

The servers (tests/fixtures/helpdesks.py) speak Zammad's and Chatwoot's documented REST
contracts, written from their public API documentation; the connector's own HTTP client
code talks to them. Cases are written on ``queue.*`` as the route stage writes them.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from pipeline.caseevents import CaseEvent
from pipeline.ops.deadletters import Selection, load, plan_replay, replay
from pipeline.ops.status import HelpdeskRow, collect
from pipeline.topics import Topic
from tests.fixtures.helpdesks import ChatwootServer, ZammadServer
from tests.fixtures.kafka_io import KafkaIO
from tests.integration.helpdesk_helpers import (
    chatwoot_headers,
    create_queues,
    helpdesk_settings,
    post,
    routed,
    running_hub,
    wait_until,
    zammad_headers,
)


async def helpdesk_status(settings, condition, timeout: float = 60.0) -> HelpdeskRow:  # type: ignore[no-untyped-def]
    """The zammad row of `pipeline status` once ``condition`` holds for it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        report = await collect(settings, datetime.now(UTC))
        row = next(r for r in report.helpdesks if r.name == "zammad")
        if condition(row):
            return row
        assert loop.time() < deadline, f"status never showed it: {row}"
        await asyncio.sleep(0.5)


async def test_a_helpdesk_down_for_a_while_gets_every_ticket_once(settings, kafka_io: KafkaIO,
                                                                   zammad: ZammadServer):
    settings = helpdesk_settings(settings, zammad)
    await create_queues(settings, "tech", "billing")
    zammad.down_for(60.0)  # 503 with Retry-After: 1 until the test brings it back
    cases = [routed(n, queue="tech" if n % 2 else "billing") for n in range(8)]
    await kafka_io.produce("queue.tech", [(e.case.case_id, e.to_bytes())  # type: ignore[union-attr]
                                          for e in cases if e.routing.queue == "tech"])  # type: ignore[union-attr]
    await kafka_io.produce("queue.billing", [(e.case.case_id, e.to_bytes())  # type: ignore[union-attr]
                                             for e in cases if e.routing.queue == "billing"])  # type: ignore[union-attr]
    async with running_hub(settings):
        # `pipeline status` says the helpdesk is paused, why, and how much waits for it.
        row = await helpdesk_status(settings, lambda r: r.paused and r.last_error is not None)
        assert row.backlog == len(cases)
        assert "answered 503" in (row.last_error or "")
        zammad.down_for(0)
        await wait_until(lambda: len(zammad.tickets) == len(cases))
        row = await helpdesk_status(settings, lambda r: r.backlog == 0 and not r.paused)
    # The outage was met (the first search was refused), and the connector waited it out.
    assert zammad.refused > 0
    # A second connector process starts from the committed offsets: nothing is redone.
    async with running_hub(settings) as hub:
        late = routed(99, queue="tech")
        await kafka_io.produce("queue.tech", [(late.case.case_id, late.to_bytes())])  # type: ignore[union-attr]
        await wait_until(lambda: len(zammad.tickets) == len(cases) + 1)
        assert hub.port is not None
    for envelope in [*cases, late]:
        tickets = zammad.by_case(envelope.case.case_id)  # type: ignore[union-attr]
        assert len(tickets) == 1, envelope.case
        expected_group = "Support N2" if envelope.routing.queue == "tech" else "Billing"  # type: ignore[union-attr]
        assert tickets[0]["group"] == expected_group
        assert tickets[0]["priority"] == "3 high"
        assert tickets[0]["support_account_id"] == envelope.sender.app_identity.account_id  # type: ignore[union-attr]


async def test_a_redelivered_case_finds_its_ticket_and_a_follow_up_is_added_once(
        settings, kafka_io: KafkaIO, zammad: ZammadServer):
    settings = helpdesk_settings(settings, zammad)
    await create_queues(settings, "tech")
    first = routed(1, text="Bonjour, l'imprimante du magasin de Lyon n'imprime plus les tickets.")
    again = routed(1, text=first.text)  # route wrote it twice (a rebalance replayed it)
    follow_up = routed(2, action="merged", case_id=first.case.case_id,  # type: ignore[union-attr]
                       text="Toujours en panne ce matin, merci de rappeler.")
    records = [(first.case.case_id, e.to_bytes()) for e in (first, again, follow_up, follow_up)]  # type: ignore[union-attr]
    await kafka_io.produce("queue.tech", records)
    async with running_hub(settings):
        await wait_until(lambda: any(len(a) == 2 for a in zammad.articles.values()))
        await wait_until(lambda: zammad.requests.count(
            ("GET", "/api/v1/ticket_articles/by_ticket/1")) >= 2)
    tickets = zammad.by_case(first.case.case_id)  # type: ignore[union-attr]
    assert len(tickets) == 1
    articles = zammad.articles[tickets[0]["id"]]
    assert [a["message_id"] for a in articles] == [first.id, follow_up.id]
    assert "Toujours en panne" in articles[1]["body"]
    assert "Case: " + first.case.case_id in articles[0]["body"]  # type: ignore[union-attr]
    assert articles[0]["sender"] == "Customer" and not articles[0]["internal"]


async def test_a_ticket_the_helpdesk_rejects_is_dead_lettered_then_replayed_after_a_fix(
        settings, kafka_io: KafkaIO, zammad: ZammadServer):
    settings = helpdesk_settings(settings, zammad)
    settings.helpdesk.zammad.groups["product"] = "Produit"  # no such group in Zammad (yet)
    await create_queues(settings, "product", "tech")
    idea = routed(5, queue="product", priority="low",
                  text="Ce serait bien de pouvoir exporter les ventes en CSV.")
    bug = routed(6, queue="product", text="La caisse plante au paiement sans contact.")
    await kafka_io.produce("queue.product", [(e.case.case_id, e.to_bytes()) for e in (idea, bug)])  # type: ignore[union-attr]
    zammad.groups.add("Support N2")
    async with running_hub(settings):
        dead = await kafka_io.read(Topic.DEADLETTER, count=2, timeout=60)
        assert {json.loads(d.value["value"])["id"] for d in dead} == {idea.id, bug.id}
        assert all(d.value["stage"] == "helpdesk.zammad" for d in dead)
        assert "No lookup value found for 'group'" in dead[0].value["error"]
        assert not zammad.tickets
        # The support lead creates the group in Zammad, the operator replays.
        zammad.groups.add("Produit")
        letters, ledger = await load(settings)
        todo, _ = plan_replay(letters, ledger, Selection(stage="helpdesk.zammad"))
        await replay(settings, todo, idea.received_at)
        await wait_until(lambda: len(zammad.tickets) == 2)
    assert {t["group"] for t in zammad.tickets.values()} == {"Produit"}
    assert {t["priority"] for t in zammad.tickets.values()} == {"1 low", "3 high"}


async def test_forged_or_malformed_webhooks_produce_nothing(settings, kafka_io: KafkaIO,
                                                            zammad: ZammadServer,
                                                            chatwoot: ChatwootServer):
    settings = helpdesk_settings(settings, zammad, chatwoot)
    await create_queues(settings, "tech")
    await kafka_io.create_topics()
    ticket = {"ticket": {"id": 1, "number": "31001", "state": "closed",
                         "support_case_id": "C-0000000001", "support_account_id": "acct-001"}}
    body = json.dumps(ticket).encode()
    async with running_hub(settings) as hub:
        status, _ = await post(hub, "/helpdesk/zammad", body, zammad_headers(body, "guessed"))
        assert status == 401
        status, _ = await post(hub, "/helpdesk/zammad", body, {})
        assert status == 401
        status, _ = await post(hub, "/helpdesk/zammad", b"{not json",
                               zammad_headers(b"{not json"))
        assert status == 422
        chat = json.dumps({"event": "conversation_status_changed", "id": 4, "status": "resolved",
                           "custom_attributes": {"support_case_id": "C-0000000002",
                                                 "support_account_id": "acct-002"}}).encode()
        status, _ = await post(hub, "/helpdesk/chatwoot", chat, chatwoot_headers(chat, "nope"))
        assert status == 401
        # Then a genuine one goes through: the endpoint works, the forged ones were refused.
        status, answer = await post(hub, "/helpdesk/chatwoot", chat, chatwoot_headers(chat))
        assert (status, answer["event"]) == (202, "closed")
    events = await kafka_io.read(Topic.CASE_EVENTS, count=1, timeout=30, quiet=1.0)
    assert [(e.key, e.value["event"], e.value["by"]) for e in events] == [
        ("C-0000000002", "closed", "chatwoot")]


async def test_a_merge_decided_outside_zammad_is_mirrored_and_zammad_merges_come_back(
        settings, kafka_io: KafkaIO, zammad: ZammadServer):
    settings = helpdesk_settings(settings, zammad)
    await create_queues(settings, "tech")
    await kafka_io.create_topics()
    a = routed(11, text="La caisse n°2 ne démarre plus depuis la mise à jour.")
    b = routed(12, text="Caisse 2 bloquée au démarrage, écran noir.")
    await kafka_io.produce("queue.tech", [(e.case.case_id, e.to_bytes()) for e in (a, b)])  # type: ignore[union-attr]
    account = a.sender.app_identity.account_id  # type: ignore[union-attr]
    async with running_hub(settings) as hub:
        await wait_until(lambda: len(zammad.tickets) == 2)
        # An operator (or dedup) says a is b: Zammad merges a's ticket into b's.
        merge = CaseEvent(case_id=a.case.case_id, account_id=account, event="merged",  # type: ignore[union-attr]
                          into_case_id=b.case.case_id, by="operator")  # type: ignore[union-attr]
        await kafka_io.produce(Topic.CASE_EVENTS, [(merge.case_id, merge.model_dump_json().encode())])
        source = zammad.by_case(a.case.case_id)[0]  # type: ignore[union-attr]
        await wait_until(lambda: source["state"] == "merged")
        assert zammad.links[source["id"]] == zammad.by_case(b.case.case_id)[0]["id"]  # type: ignore[union-attr]
        # Zammad's trigger then reports the merge: a case event naming the target case,
        # which is not merged a second time.
        body = zammad.trigger_body(source["id"])
        status, answer = await post(hub, "/helpdesk/zammad", body, zammad_headers(body))
        assert (status, answer["event"]) == (202, "merged")
        events = await kafka_io.read(Topic.CASE_EVENTS, count=2, timeout=30)
        echoed = CaseEvent.model_validate(events[1].value)
        assert (echoed.case_id, echoed.into_case_id) == (a.case.case_id, b.case.case_id)  # type: ignore[union-attr]
        assert (echoed.by or "").startswith("zammad")
        # The connector has read that event back (its counter says so) and left it.
        await kafka_io.read(Topic.METRICS, timeout=30, until=lambda rs: any(
            r.value["stage"] == "helpdesk.zammad"
            and r.value["counters"].get("merge.reported") for r in rs))
    merges = [r for r in zammad.requests if r[0] == "PUT"]
    assert len(merges) == 1


async def test_pipeline_connector_helpdesk_runs_alone(settings, kafka_io: KafkaIO,
                                                      zammad: ZammadServer, pipeline_process):
    settings = helpdesk_settings(settings, zammad)
    await create_queues(settings, "tech")
    case = routed(41, text="Le terminal de paiement redémarre en boucle.")
    await kafka_io.produce("queue.tech", [(case.case.case_id, case.to_bytes())])  # type: ignore[union-attr]
    proc = pipeline_process(["connector", "helpdesk"], settings,
                            ready="event=helpdesk_outbound_started")
    await wait_until(lambda: len(zammad.tickets) == 1)
    assert zammad.tickets[1]["support_case_id"] == case.case.case_id  # type: ignore[union-attr]
    assert proc.stop() == 0
