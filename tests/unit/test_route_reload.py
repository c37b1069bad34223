"""Hot reload: a saved file takes effect; a broken one is refused and the last good stays."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from pipeline.envelope import Channel, Envelope
from pipeline.errors import ConfigError
from pipeline.metrics import StageMetrics
from pipeline.route.core import route_case
from pipeline.route.reload import RulesHolder

GOOD = """
categories:
  - {name: billing, keywords: [facture, invoice]}
rules:
  - {name: invoices, when: {category: [billing]}, queue: billing}
default: {queue: general}
"""


def vat_question() -> Envelope:
    return Envelope(channel=Channel.EMAIL, source_id="m1", text="Erreur sur ma facture",
                    received_at=datetime(2026, 11, 24, 9, tzinfo=UTC))


def test_edit_takes_effect_and_broken_file_keeps_last_good_rules(tmp_path, caplog):
    path = tmp_path / "routing.yaml"
    path.write_text(GOOD)
    metrics = StageMetrics("route", datetime.now(UTC))
    holder = RulesHolder(path, metrics)
    holder.load()
    first_version = holder.version
    assert route_case(vat_question(), holder.rules).queue == "billing"  # type: ignore[arg-type]

    assert holder.reload() is False, "unchanged file: nothing to do"

    path.write_text(GOOD.replace("queue: billing", "queue: accounting"))
    assert holder.reload() is False, "a change waits one interval (the editor may be writing)"
    assert holder.reload() is True
    assert route_case(vat_question(), holder.rules).queue == "accounting"  # type: ignore[arg-type]
    good_version = holder.version
    assert good_version != first_version

    path.write_text(GOOD.replace("queue: billing", "queue: Accounting Team"))
    with caplog.at_level(logging.WARNING):
        assert holder.reload() is False
        assert holder.reload() is False
    assert holder.version == good_version, "last good rules stay in force"
    assert route_case(vat_question(), holder.rules).queue == "accounting"  # type: ignore[arg-type]
    assert holder.rejected is not None and ":5 rules.0.queue" in holder.rejected
    assert metrics.counters["rules.rejected"] == 1
    assert metrics.info["rules_rejected"] == holder.rejected
    assert "event=rules_rejected" in caplog.text and "rules.0.queue" in caplog.text

    holder.reload()
    assert metrics.counters["rules.rejected"] == 1, "the same broken content is reported once"

    path.write_text(GOOD)
    holder.reload()
    assert holder.reload() is True
    assert "rules_rejected" not in metrics.info
    assert route_case(vat_question(), holder.rules).queue == "billing"  # type: ignore[arg-type]


def test_broken_file_at_start_is_fatal(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text("rules: []\n")
    with pytest.raises(ConfigError, match="default: Field required"):
        RulesHolder(path).load()


def test_half_written_file_is_never_put_in_force(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text(GOOD)
    holder = RulesHolder(path)
    holder.load()
    edited = GOOD.replace("queue: billing", "queue: accounting")
    path.write_text(edited[: edited.index("default:")] + "default: {queue: gen")  # mid-write
    assert holder.reload() is False
    path.write_text(edited)  # the editor finished
    assert holder.reload() is False
    assert holder.rejected is None, "the half file was never validated, so never 'rejected'"
    assert holder.reload() is True
    assert route_case(vat_question(), holder.rules).queue == "accounting"  # type: ignore[arg-type]


def test_editing_the_past_messages_file_alone_reloads_the_rules(tmp_path):
    (tmp_path / "past.yaml").write_text(
        "messages:\n  - {category: billing, text: \"la facture d'octobre\"}\n")
    path = tmp_path / "routing.yaml"
    path.write_text("examples_file: past.yaml\n" + GOOD)
    holder = RulesHolder(path)
    holder.load()
    first = holder.version
    assert holder.rules is not None and len(holder.rules.past_messages) == 1
    (tmp_path / "past.yaml").write_text(
        "messages:\n  - {category: billing, text: \"la facture d'octobre\"}\n"
        "  - {category: billing, text: \"deux factures pour novembre\"}\n")
    assert holder.reload() is False, "a change waits one interval"
    assert holder.reload() is True
    assert len(holder.rules.past_messages) == 2 and holder.version != first
