"""``pipeline status`` and ``pipeline stats`` as an operator runs them, on the real broker:
robust on an empty pipeline, then figures read from the topics."""

from __future__ import annotations

import json

import pytest

from pipeline.envelope import Identity, Routing
from pipeline.kafka import ensure_topics
from pipeline.topics import spec
from tests.fixtures.ops import chat_envelope

pytestmark = pytest.mark.slow


def routed_case(n: int, case_id: str, category: str | None, country: str | None) -> bytes:
    env = chat_envelope(n)
    env.identity = Identity(identified=True, account_id="hangers-lyon", country=country)
    env.routing = Routing(queue="billing", priority="normal", rule="billing-fr",
                          category=category)
    value = json.loads(env.to_bytes())
    value["case"] = {"case_id": case_id, "action": "opened"}
    return json.dumps(value).encode()


async def test_status_and_stats_read_the_topics(settings, kafka_io, operator_cli):
    await kafka_io.create_topics()
    empty = operator_cli("status")
    assert empty.returncode == 0, empty.stderr
    assert "no stage has published metrics yet" in empty.stdout
    assert "0 employees" in empty.stdout and "(no queues)" in empty.stdout

    await ensure_topics(settings.kafka, extra=[spec("queue.billing")])
    await kafka_io.produce("queue.billing", [("hangers-lyon", b"{}")] * 3)
    await kafka_io.produce("directory.employees", [
        ("emp-1", b'{"phone": "+33612345678"}'), ("emp-2", b'{"email": "compta@hangers.fr"}'),
        ("emp-1", None), ("emp-3", b'{"phone": "+3225551234"}')])
    await kafka_io.produce("cases.routed", [
        ("hangers-lyon", routed_case(1, "C-1", "anomaly", "FR")),
        ("hangers-lyon", routed_case(2, "C-2", "functional_question", "BE")),
        ("hangers-lyon", routed_case(3, "C-1", "anomaly", "FR")),  # same case re-routed
        ("acme", routed_case(4, "C-3", None, None)),
    ])

    screen = operator_cli("status")
    assert screen.returncode == 0, screen.stderr
    assert "2 employees" in screen.stdout  # emp-1 was deleted by its tombstone
    assert "billing" in screen.stdout and "      3" in screen.stdout

    result = operator_cli("stats", "--since", "7d", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["cases"] == 3
    assert figures["by"]["category"] == {"anomaly": 1, "functional_question": 1, "unknown": 1}
    assert figures["by"]["country"] == {"FR": 1, "BE": 1, "unknown": 1}
    assert figures["by"]["channel"] == {"chat": 3}

    bad = operator_cli("stats", "--since", "last week")
    assert bad.returncode == 1 and "e.g. 7d" in bad.stderr
