"""A transient failure pauses the stage instead of dead-lettering: the blob store goes away
mid-stream, nothing is dead-lettered, everything flows once it is back.

The worker runs ingest, which keeps the overflow of a long message in the blob store. The
store is a local directory; replacing it by a plain file makes it unavailable the way an
unmounted volume or an unreachable bucket is (every write fails).
"""

from __future__ import annotations

import shutil
import signal
from datetime import UTC, datetime

import pytest

from pipeline.envelope import Channel, Envelope, Sender
from tests.fixtures.broker import override, tapped

pytestmark = pytest.mark.slow


def long_message(n: int) -> Envelope:
    text = f"Bonjour, voici le journal complet de la caisse n°{n} : " + "ligne ok; " * 400
    return Envelope(channel=Channel.EMAIL, source_id=f"<journal-{n}@hangers.fr>",
                    received_at=datetime(2026, 11, 24, 9, n, tzinfo=UTC),
                    sender=Sender(email=f"caisse{n}@hangers.fr"), text=text)


async def test_blob_store_outage_pauses_ingest_and_nothing_is_dead_lettered(
        settings, kafka_io, pipeline_process, tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    settings = override(settings, ingest={"max_text_chars": 500}, blobs={"url": str(blobs)},
                        worker={"retry_initial_seconds": 0.2, "retry_max_seconds": 1.0})
    await kafka_io.create_topics()
    worker = pipeline_process(["worker", "--stages", "ingest"], tapped(settings, "messages.normalized"))

    first = long_message(1)
    await kafka_io.produce("inbound.raw", [(first.sender_key, first.to_bytes())])
    assert len(await kafka_io.read("messages.normalized", count=1)) == 1

    shutil.rmtree(blobs)
    blobs.write_text("the volume is gone")  # every write under it now fails
    during = [long_message(n) for n in range(2, 7)]
    await kafka_io.produce("inbound.raw", [(e.sender_key, e.to_bytes()) for e in during])
    worker.wait_for("event=stage_paused stage=ingest", timeout=30)
    metrics = await kafka_io.read("pipeline.metrics", timeout=30, until=lambda rs: any(
        r.key == "ingest" and "paused" in r.value.get("info", {}) for r in rs))
    paused = next(r.value for r in metrics if "paused" in r.value.get("info", {}))
    assert "BlobStoreUnavailable" in paused["info"]["paused"]
    assert paused["counters"].get("retried", 0) >= 1
    assert await kafka_io.read("pipeline.deadletter", timeout=2) == []

    blobs.unlink()
    blobs.mkdir()  # the volume is back
    out = await kafka_io.read("messages.normalized", count=6, timeout=60, quiet=1.0)
    assert sorted(r.value["source_id"] for r in out) == sorted(
        e.source_id for e in [first, *during])
    assert all(any(a.get("filename") == "full-text.txt" for a in r.value["attachments"])
               for r in out)
    worker.wait_for("event=stage_resumed stage=ingest", timeout=10)
    assert await kafka_io.read("pipeline.deadletter", timeout=2) == []


async def test_a_worker_stopped_while_paused_loses_nothing(
        settings, kafka_io, pipeline_process, tmp_path):
    """SIGTERM while the hop waits out an outage: the messages it had not finished are not
    committed, and the next worker processes them (faust acks a batch's events when its
    loop is left, even by a cancel: the runtime must not let it)."""
    blobs = tmp_path / "blobs"
    blobs.write_text("the volume is gone")  # down from the start
    settings = tapped(override(settings, ingest={"max_text_chars": 500},
                               blobs={"url": str(blobs)},
                               worker={"retry_initial_seconds": 0.2, "retry_max_seconds": 1.0}),
                      "messages.normalized")
    await kafka_io.create_topics()
    worker = pipeline_process(["worker", "--stages", "ingest"], settings)
    waiting = [long_message(n) for n in range(1, 6)]
    await kafka_io.produce("inbound.raw", [(e.sender_key, e.to_bytes()) for e in waiting])
    worker.wait_for("event=stage_paused stage=ingest", timeout=30)
    assert worker.stop(signal.SIGTERM) == 0

    blobs.unlink()
    blobs.mkdir()  # the volume is back; a new worker takes over
    pipeline_process(["worker", "--stages", "ingest"], settings)
    out = await kafka_io.read("messages.normalized", timeout=60, quiet=1.0, until=lambda rs: {
        r.value["source_id"] for r in rs} >= {e.source_id for e in waiting})
    assert sorted({r.value["source_id"] for r in out}) == sorted(e.source_id for e in waiting)
    assert await kafka_io.read("pipeline.deadletter", timeout=2) == []
