"""A poison message on the real broker: dead-lettered once, the stage moves on, the operator
sees it (Prometheus, ``pipeline status``), and ``pipeline deadletter replay`` re-injects the
corrected record exactly once."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from datetime import UTC, datetime

import pytest

from pipeline.ops import status
from pipeline.ops.config import MetricsConfig
from tests.fixtures.broker import tapped
from tests.fixtures.ops import chat_envelope

pytestmark = pytest.mark.slow


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


async def wait_for(check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    """Call ``check`` until it returns something truthy (or raise with its last value)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {result!r}")
        await asyncio.sleep(0.5)


async def test_poison_message_is_dead_lettered_once_seen_and_replayed_once(
        settings, kafka_io, pipeline_process, operator_cli, tmp_path):
    await kafka_io.create_topics()
    before, after = chat_envelope(1), chat_envelope(41)  # same user: same partition, in order
    assert before.sender_key == after.sender_key
    # An older app build wrote channel "sms", which the envelope does not know: ingest fails.
    poison = json.loads(chat_envelope(81).to_bytes())
    poison["channel"] = "sms"
    poison_bytes = json.dumps(poison).encode()
    await kafka_io.produce("inbound.raw", [(before.sender_key, before.to_bytes()),
                                           (before.sender_key, poison_bytes),
                                           (after.sender_key, after.to_bytes())])
    worker_settings = settings.model_copy(update={
        "metrics": MetricsConfig(enabled=True, host="127.0.0.1", port=0)})
    worker = pipeline_process(["worker", "--stages", "ingest"],
                              tapped(worker_settings, "messages.normalized"))
    url = re.search(r"url=(\S+)", worker.wait_for("event=metrics_endpoint")).group(1)

    out = await kafka_io.read("messages.normalized", count=2, quiet=1.0)
    assert [r.value["id"] for r in out] == [before.id, after.id]  # moved on past the poison
    dead = await kafka_io.read("pipeline.deadletter", count=1, quiet=1.0)
    assert len(dead) == 1
    assert dead[0].value["stage"] == "ingest"
    assert dead[0].value["source_topic"] == "inbound.raw"
    assert json.loads(dead[0].value["value"])["channel"] == "sms"

    # Prometheus reads the worker's live counters.
    exposition = scrape(url)
    assert 'pipeline_stage_events_total{counter="in",stage="ingest"} 3.0' in exposition
    assert 'pipeline_stage_events_total{counter="deadletter",stage="ingest"} 1.0' in exposition
    assert 'pipeline_stage_latency_seconds{quantile="0.99",stage="ingest"}' in exposition

    # The status screen: ingest's counters and error, lag drained, one dead letter.
    async def settled() -> status.StatusReport | None:
        report = await status.collect(settings, datetime.now(UTC))
        rows = {r.stage: r for r in report.stages}
        ingest = rows.get("ingest")
        lag = [r for r in report.lag if r.topic == "inbound.raw"]
        if ingest and ingest.processed == 3 and lag and sum(r.lag for r in lag) == 0:
            return report
        return None

    report = await wait_for(settled)
    ingest = report.stages[0]
    assert ingest.deadlettered == 1 and "EnvelopeError" in (ingest.last_error or "")
    assert report.deadletters == 1 and report.replayed == 0
    assert report.lag[0].group.startswith(settings.worker.app_id)
    screen = status.render(report)
    print(screen)
    assert "ingest" in screen and "EnvelopeError" in screen

    listed = operator_cli("deadletter", "list")
    assert listed.returncode == 0, listed.stderr
    assert "EnvelopeError" in listed.stdout
    assert "1 dead-letter record(s), 0 replayed" in listed.stdout
    position = f"{dead[0].partition}:{dead[0].offset}"

    # The operator corrects the channel and replays that one record.
    poison["channel"] = "chat"
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(poison))
    replayed = operator_cli("deadletter", "replay", "--at", position, "--value-file", str(fixed))
    assert replayed.returncode == 0, replayed.stderr
    assert "1 replayed" in replayed.stdout
    out = await kafka_io.read("messages.normalized", count=3, quiet=1.0)
    assert [r.value["id"] for r in out] == [before.id, after.id, chat_envelope(81).id]

    # A second replay, even of everything, re-injects nothing.
    again = operator_cli("deadletter", "replay", "--all")
    assert again.returncode == 0, again.stderr
    assert "0 replayed, 1 already replayed before" in again.stdout
    inbound = await kafka_io.read("inbound.raw", count=4, quiet=1.5)
    assert len(inbound) == 4  # three produced, one replayed
    listed = operator_cli("deadletter", "list")
    print(listed.stdout)
    assert "1 dead-letter record(s), 1 replayed" in listed.stdout
    assert f"→ inbound.raw@{inbound[-1].partition}:" in listed.stdout
