"""The hops, run in process (no Kafka): the same steps and chains the workers run.

What a user notices: a registered customer's chat message becomes a routed case in one
pass with no intermediate topic written; an unknown sender's voice note is quarantined
without a transcription being spent on it; an identified one waits for a transcriber; a
failing step's dead letter names the step and replays through the whole hop.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.chain import Abandoned
from pipeline.deadletter import DeadLetter
from pipeline.envelope import Attachment, AttachmentKind, Channel, Envelope, Sender
from pipeline.errors import DirectoryUnavailable
from pipeline.identify.directory import Account, Directory, DirectoryEmployee
from pipeline.inprocess import InProcessPipeline
from pipeline.settings import Settings
from pipeline.stage import REPLAY_HEADER
from pipeline.topics import Topic

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday, business hours in Paris


class StaticDirectory:
    """The directory side input, given as a value; ``broken`` makes lookups fail."""

    def __init__(self, *employees: DirectoryEmployee) -> None:
        self._directory = Directory()
        for employee in employees:
            self._directory.apply(employee.id, employee)
        self.broken = False
        self.unreachable = False

    @property
    def directory(self) -> Directory:
        if self.broken:
            raise RuntimeError("directory index corrupt")
        if self.unreachable:
            raise DirectoryUnavailable("directory topic unreachable")
        return self._directory

    async def catch_up(self, since: float | None = None, timeout: float = 30.0) -> None:
        return None


CLAIRE = DirectoryEmployee(id="EMP-1", name="Claire Martin", emails=["claire@lyon-bois.fr"],
                           phones=["+33612345678"],
                           account=Account(id="ACC-77", name="Lyon Bois", language="fr"))


def settings(tmp_path: Path, **worker: object) -> Settings:
    return Settings.model_validate({"kafka": {"bootstrap": "unused:9092"},
                                    "blobs": {"url": str(tmp_path / "blobs")},
                                    "worker": worker})


def pipeline(tmp_path: Path, directory: StaticDirectory, stages: list[str] | None = None,
             **worker: object) -> InProcessPipeline:
    return InProcessPipeline(settings(tmp_path, **worker), stages=stages,
                             clock=lambda: NOW, side_inputs={"directory": directory})


def whatsapp(source_id: str, text: str, phone: str = "+33612345678") -> Envelope:
    return Envelope(channel=Channel.WHATSAPP, source_id=source_id, received_at=NOW,
                    sender=Sender(whatsapp_id=phone, phone=phone), text=text)


def voice_note(source_id: str, phone: str) -> Envelope:
    return Envelope(channel=Channel.WHATSAPP, source_id=source_id, received_at=NOW,
                    sender=Sender(whatsapp_id=phone, phone=phone),
                    attachments=[Attachment(kind=AttachmentKind.AUDIO, content_type="audio/ogg",
                                            size=5, uri="file:///nowhere/note.ogg")])


async def test_a_customers_message_becomes_a_routed_case_without_intermediate_topics(tmp_path):
    run = pipeline(tmp_path, StaticDirectory(CLAIRE))
    message = whatsapp("SM-m1", "Bonjour, ma facture de novembre est en double, merci de "
                              "corriger le montant prélevé.")
    await run.send(Topic.INBOUND_RAW, message.sender_key, message)

    routed = run.envelopes(Topic.ROUTED)
    assert [e.source_id for e in routed] == ["SM-m1"]
    case = routed[0]
    assert case.identity is not None and case.identity.account_id == "ACC-77"
    assert case.case is not None and case.case.action == "opened"
    assert case.routing is not None and run.envelopes(f"queue.{case.routing.queue}")
    assert [m.stage for m in case.trace] == ["ingest", "identify", "spamfilter", "dedup", "route"]
    # Two records crossed the broker between stages: the hop inputs, nothing in between.
    for tap in (Topic.NORMALIZED, Topic.IDENTIFIED, Topic.TRANSCRIBED, Topic.CASE_UPDATES):
        assert run.topics[tap] == []
    assert [w.key for w in run.topics[Topic.ACCEPTED]] == ["ACC-77"]


async def test_a_tap_writes_the_intermediate_result_and_changes_nothing_else(tmp_path):
    run = pipeline(tmp_path, StaticDirectory(CLAIRE), taps=["messages.normalized",
                                                           "cases.updates"])
    message = whatsapp("SM-m1", "Bonjour, le bouton Enregistrer ne fait rien depuis hier.")
    await run.send(Topic.INBOUND_RAW, message.sender_key, message)
    assert [e.source_id for e in run.envelopes(Topic.NORMALIZED)] == ["SM-m1"]
    assert [e.case.action for e in run.envelopes(Topic.CASE_UPDATES) if e.case] == ["opened"]
    assert run.topics[Topic.IDENTIFIED] == []
    assert len(run.envelopes(Topic.ROUTED)) == 1


async def test_an_unknown_senders_voice_note_is_quarantined_without_a_transcription(tmp_path):
    run = pipeline(tmp_path, StaticDirectory(CLAIRE))  # every hop, transcription included
    note = voice_note("SM-unknown", "+33700000000")
    await run.send(Topic.INBOUND_RAW, note.sender_key, note)

    spam = run.envelopes(Topic.SPAM)
    assert [(e.source_id, e.spam.reason if e.spam else None) for e in spam] == [
        ("SM-unknown", "unidentified")]
    assert run.topics[Topic.TRANSCRIBE_AUDIO] == []
    assert run.counter("transcribe", "in") == 0
    assert run.counter("transcribe", "transcribed") == 0
    assert spam[0].transcripts == []


async def test_an_identified_voice_note_waits_for_a_transcriber_keyed_by_account(tmp_path):
    run = pipeline(tmp_path, StaticDirectory(CLAIRE), stages=["intake", "cases"])
    note = voice_note("SM-claire", "+33612345678")
    await run.send(Topic.INBOUND_RAW, note.sender_key, note)

    waiting = run.topics[Topic.TRANSCRIBE_AUDIO]
    assert [w.key for w in waiting] == ["ACC-77"]
    assert waiting[0].envelope().spam is not None
    assert run.topics[Topic.SPAM] == [] and run.topics[Topic.ACCEPTED] == []


async def test_a_source_retry_is_dropped_in_the_hop(tmp_path):
    run = pipeline(tmp_path, StaticDirectory(CLAIRE))
    message = whatsapp("SM-m1", "Bonjour, je n'arrive plus à me connecter sur l'iPad.")
    for _ in range(2):
        await run.send(Topic.INBOUND_RAW, message.sender_key, message)
    assert len(run.envelopes(Topic.ROUTED)) == 1
    assert run.counter("ingest", "dropped.source_retry") == 1


async def test_a_failing_step_is_dead_lettered_by_name_and_replays_through_its_hop(tmp_path):
    directory = StaticDirectory(CLAIRE)
    run = pipeline(tmp_path, directory)
    directory.broken = True
    message = whatsapp("SM-m1", "Bonjour, pouvez-vous m'envoyer la facture de décembre ?")
    await run.send(Topic.INBOUND_RAW, message.sender_key, message)

    [written] = run.topics[Topic.DEADLETTER]
    letter = DeadLetter.model_validate_json(written.value or b"")
    assert (letter.stage, letter.source_topic, letter.error_type) == (
        "identify", "inbound.raw", "RuntimeError")
    assert letter.message_id is not None and "corrupt" in letter.error
    assert run.envelopes(Topic.ROUTED) == []

    # Fixed, then replayed as `pipeline deadletter replay` does: into the hop's input with
    # the original bytes. Ingest already saw the key and lets it through all the same.
    directory.broken = False
    await run.send(Topic.INBOUND_RAW, letter.key, letter.original_value(),
                   headers=((REPLAY_HEADER, b"0:0"),))
    assert [e.source_id for e in run.envelopes(Topic.ROUTED)] == ["SM-m1"]
    # Without the replay mark the same bytes are a source retry, dropped.
    await run.send(Topic.INBOUND_RAW, letter.key, letter.original_value())
    assert len(run.envelopes(Topic.ROUTED)) == 1


async def test_an_outage_pauses_the_hop_and_a_stop_gives_the_record_up_unwritten(tmp_path):
    directory = StaticDirectory(CLAIRE)
    run = pipeline(tmp_path, directory, retry_initial_seconds=0.01, retry_max_seconds=0.02)
    directory.unreachable = True
    message = whatsapp("SM-m1", "Bonjour, la caisse 2 ne démarre plus depuis ce matin.")

    async def stop_soon() -> None:
        while run.counter("identify", "retried") < 3:
            await asyncio.sleep(0.01)
        run.ctx.stop_requested = True  # faust suspends its flow on a stop or a rebalance

    stopper = asyncio.create_task(stop_soon())
    with pytest.raises(Abandoned):
        await run.send(Topic.INBOUND_RAW, message.sender_key, message)
    await stopper
    # Retried (not dead-lettered) while the directory was away; nothing written for it.
    assert run.counter("identify", "deadletter") == 0
    assert run.topics[Topic.DEADLETTER] == [] and run.topics[Topic.ROUTED] == []
