"""The operator tools' pure parts: status figures, replay planning, case statistics, and the
Prometheus exposition of live stage counters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from pipeline.deadletter import DeadLetter
from pipeline.errors import ConfigError, EnvelopeError
from pipeline.metrics import StageMetrics, StageSnapshot
from pipeline.ops import deadletters, stats, status
from pipeline.ops.prometheus import registry_for

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def snap(stage: str, worker: str, seconds: float, counters: dict[str, int], *,
         started: datetime = T0, error: str | None = None) -> StageSnapshot:
    return StageSnapshot(stage=stage, worker=worker, at=T0 + timedelta(seconds=seconds),
                         started_at=started, counters=counters,
                         latency_ms={"p50": 1.0, "p99": 4.5} if counters else {},
                         last_error=error,
                         last_error_at=T0 + timedelta(seconds=seconds) if error else None)


# --- status -------------------------------------------------------------------------------

def test_throughput_is_the_rise_between_a_workers_last_two_snapshots():
    rows = status.stage_rows([
        snap("ingest", "w1", 10, {"in": 100}),
        snap("ingest", "w1", 20, {"in": 600}),
        snap("ingest", "w2", 20, {"in": 50}),  # one snapshot: since its start, 2.5/s
    ], now=T0 + timedelta(seconds=21), fresh_for=timedelta(seconds=30))
    [ingest] = rows
    assert ingest.workers == 2 and ingest.processed == 650
    assert ingest.per_second == pytest.approx(50.0 + 2.5)


def test_a_restarted_worker_is_not_read_as_a_negative_rate():
    restarted = T0 + timedelta(seconds=15)
    [row] = status.stage_rows([
        snap("ingest", "w1", 10, {"in": 900}),
        snap("ingest", "w1", 20, {"in": 40}, started=restarted),
    ], now=T0 + timedelta(seconds=20), fresh_for=timedelta(seconds=30))
    assert row.per_second == pytest.approx(40 / 5)


def test_a_silent_worker_is_stale_and_adds_no_throughput():
    [row] = status.stage_rows([
        snap("identify", "gone", 0, {"in": 10}), snap("identify", "gone", 10, {"in": 20}),
    ], now=T0 + timedelta(minutes=10), fresh_for=timedelta(seconds=35))
    assert row.stale_workers == 1 and row.per_second is None and row.processed == 20


def test_stages_show_in_flow_order_with_their_last_error():
    rows = status.stage_rows([
        snap("route", "w", 5, {"in": 1}),
        snap("ingest", "w", 5, {"in": 3, "deadletter": 1}, error="EnvelopeError: channel"),
        snap("custom", "w", 5, {}),
    ], now=T0 + timedelta(seconds=6), fresh_for=timedelta(seconds=30))
    assert [r.stage for r in rows] == ["ingest", "route", "custom"]
    assert rows[0].last_error == "EnvelopeError: channel" and rows[0].deadlettered == 1


def test_what_a_stage_says_about_itself_is_on_the_screen_and_on_prometheus():
    reloaded = snap("route", "w", 5, {"in": 1})
    reloaded.info = {"rules_version": "2026-11-20.3", "rules_reload": "ok"}
    rows = status.stage_rows([snap("route", "w", 1, {}), reloaded], T0, timedelta(seconds=30))
    screen = status.render(status.StatusReport(at=T0, stages=rows))
    assert "route: rules_reload=ok  rules_version=2026-11-20.3" in screen
    metrics = {"route": StageMetrics("route", T0)}
    metrics["route"].info["rules_version"] = "2026-11-20.3"
    text = generate_latest(registry_for(metrics, "w")).decode()
    assert 'pipeline_stage_info{key="rules_version",stage="route",value="2026-11-20.3"} 1.0' \
        in text


def test_quarantine_by_reason_sums_the_latest_snapshot_of_each_worker():
    reasons = status.quarantine_by_reason([
        snap("spamfilter", "w1", 5, {"quarantined.empty": 1}),
        snap("spamfilter", "w1", 15, {"quarantined.empty": 4, "quarantined.unknown_sender": 2,
                                      "in": 9}),
        snap("spamfilter", "w2", 15, {"quarantined.empty": 1}),
    ])
    assert reasons == {"empty": 5, "unknown_sender": 2}


def test_directory_size_counts_keys_whose_last_value_is_not_a_tombstone():
    assert status.live_keys([(b"e1", b"{}"), (b"e2", b"{}"), (b"e1", None), (b"e3", b"{}"),
                             (b"e3", b"{}")]) == 2


def test_an_empty_pipeline_renders_without_error():
    screen = status.render(status.StatusReport(at=T0))
    assert "no stage has published metrics yet" in screen
    assert "(no committed offsets)" in screen and "(no topic)" in screen


def test_the_screen_shows_lag_queues_and_dead_letters():
    report = status.StatusReport(
        at=T0, stages=status.stage_rows([snap("ingest", "w", 5, {"in": 3})], T0,
                                        timedelta(seconds=30)),
        lag=[status.LagRow("support-pipeline", "inbound.raw", 0, 90, 120)],
        quarantine={"empty": 3}, queues={"billing": 7}, deadletters=2, replayed=1,
        directory_size=412)
    screen = status.render(report)
    assert "lag     30" in screen and "support-pipeline: total 30" in screen
    assert "billing" in screen and "2 held, 1 replayed" in screen and "412 employees" in screen


# --- dead letters -------------------------------------------------------------------------

def letter(partition: int, offset: int, stage: str,
           message_id: str | None) -> deadletters.StoredDeadLetter:
    record = DeadLetter.from_failure(
        stage=stage, error=EnvelopeError("not a valid envelope: channel: Input should be chat"),
        failed_at=T0 + timedelta(seconds=offset), source_topic="inbound.raw",
        value=b'{"channel": "sms"}', key=b"chat:app:acme:u1", partition=0, offset=offset,
        message_id=message_id)
    return deadletters.parse_dead_letter(partition, offset, record.model_dump_json().encode())


def ledger_entry() -> deadletters.Replayed:
    return deadletters.Replayed(replayed_at=T0, stage="ingest", topic="inbound.raw",
                                partition=1, offset=77)


def test_replay_skips_what_the_ledger_holds():
    letters = [letter(0, 1, "ingest", None), letter(0, 2, "identify", "m-2"),
               letter(1, 1, "identify", "m-3")]
    todo, done = deadletters.plan_replay(letters, {"0:2": ledger_entry()},
                                         deadletters.Selection(everything=True))
    assert [d.position for d in todo] == ["0:1", "1:1"]
    assert [d.position for d in done] == ["0:2"]


@pytest.mark.parametrize(("selection", "expected"), [
    (deadletters.Selection(stage="identify"), ["0:2", "1:1"]),
    (deadletters.Selection(message_id="m-3"), ["1:1"]),
    (deadletters.Selection(position="0:1"), ["0:1"]),
    (deadletters.Selection(stage="ingest", message_id="m-3"), []),
])
def test_replay_selects_by_stage_id_or_position(selection, expected):
    letters = [letter(0, 1, "ingest", None), letter(0, 2, "identify", "m-2"),
               letter(1, 1, "identify", "m-3")]
    todo, _ = deadletters.plan_replay(letters, {}, selection)
    assert [d.position for d in todo] == expected


def test_replay_without_a_selection_is_refused():
    with pytest.raises(ConfigError, match="--all"):
        deadletters.plan_replay([letter(0, 1, "ingest", None)], {}, deadletters.Selection())


def test_an_unreadable_dead_letter_is_listed_never_replayed():
    junk = deadletters.parse_dead_letter(0, 5, b"not json")
    assert junk.record is None and "unreadable" in deadletters.describe(junk, None)
    todo, _ = deadletters.plan_replay([junk], {}, deadletters.Selection(everything=True))
    assert todo == []


def test_the_listing_says_what_failed_and_where_it_was_replayed():
    text = deadletters.describe(letter(0, 3, "ingest", "m-9"), ledger_entry())
    assert "ingest" in text and "EnvelopeError" in text and "inbound.raw@0:3" in text
    assert "id=m-9" in text and "→ inbound.raw@1:77" in text


# --- stats --------------------------------------------------------------------------------

def routed(case_id: str | None, *, category=None, queue="support-n1", country=None,
           channel="chat", help_topic=None) -> bytes:
    env: dict = {"id": f"msg-{case_id}", "channel": channel, "source_id": "x",
                 "received_at": "2026-11-23T09:00:00Z", "headers": {}}
    if case_id:
        env["case"] = {"case_id": case_id, "action": "opened"}
    if help_topic:
        env["headers"]["x-help-topic"] = help_topic
    if country:
        env["identity"] = {"identified": True, "country": country}
    env["routing"] = {"queue": queue, "priority": "normal", "rule": "r1"}
    if category:
        env["routing"]["category"] = category
    return json.dumps(env).encode()


def test_cases_count_once_by_category_module_country_and_channel():
    result = stats.case_stats([
        routed("C1", category="anomaly", country="fr", help_topic="accounting"),
        routed("C2", category="functional_question", country="BE", channel="whatsapp"),
        routed("C1", category="anomaly", country="fr", help_topic="billing"),  # re-routed
        routed("C3"),  # route not filling category/country yet: unknown
        b"{broken", b"[]",
    ], T0, T0)
    assert result.cases == 3 and result.skipped == 2
    assert result.by["category"] == {"anomaly": 1, "functional_question": 1, "unknown": 1}
    assert result.by["country"] == {"FR": 1, "BE": 1, "unknown": 1}
    assert result.by["channel"] == {"chat": 2, "whatsapp": 1}
    assert result.by["module"] == {"billing": 1, "support-n1": 2}
    text = stats.render(result)
    assert "BY COUNTRY" in text and "anomaly" in text


@pytest.mark.parametrize(("text", "seconds"), [("7d", 7 * 86400), ("12h", 43200),
                                               ("30m", 1800), ("2w", 14 * 86400)])
def test_periods(text, seconds):
    assert stats.parse_period(text).total_seconds() == seconds


def test_a_bad_period_names_the_expected_form():
    with pytest.raises(ConfigError, match="e.g. 7d"):
        stats.parse_period("last week")


# --- prometheus ---------------------------------------------------------------------------

def test_prometheus_reads_the_live_counters_without_a_copy():
    metrics = {"ingest": StageMetrics("ingest", T0)}
    registry = registry_for(metrics, "w1")
    metrics["ingest"].count("in", 3)
    metrics["ingest"].count("quarantined.empty")
    metrics["ingest"].observe_latency(0.004)
    metrics["ingest"].error("EnvelopeError: x", T0 + timedelta(seconds=5))
    text = generate_latest(registry).decode()
    assert 'pipeline_stage_events_total{counter="in",stage="ingest"} 3.0' in text
    assert 'pipeline_stage_events_total{counter="quarantined.empty",stage="ingest"} 1.0' in text
    assert 'pipeline_stage_latency_seconds{quantile="0.5",stage="ingest"} 0.004' in text
    assert "pipeline_stage_last_error_timestamp_seconds" in text
    metrics["ingest"].count("in")
    metrics["route"] = StageMetrics("route", T0)  # a stage registered later shows up too
    text = generate_latest(registry).decode()
    assert 'pipeline_stage_events_total{counter="in",stage="ingest"} 4.0' in text
    assert 'pipeline_stage_started_timestamp_seconds{stage="route"}' in text
