"""Blob store, dead-letter records and the topic catalogue."""

from datetime import UTC, datetime

import pytest

from pipeline.blobstore import BlobStore
from pipeline.deadletter import DeadLetter
from pipeline.errors import BlobStoreError
from pipeline.topics import CATALOGUE, Topic, TopicNames, spec


def test_blob_store_is_content_addressed_and_idempotent(tmp_path):
    store = BlobStore(str(tmp_path / "blobs"))
    first = store.put(b"OggS voice note")
    again = store.put(b"OggS voice note")
    other = store.put(b"another file")
    assert first == again
    assert first.uri != other.uri
    assert first.uri.startswith("file://") and first.sha256 in first.uri
    assert store.get(first.uri) == b"OggS voice note"
    assert len(list((tmp_path / "blobs").rglob("*"))) == 4  # 2 dirs + 2 files, no .partial


def test_blob_store_memory_url_works_through_fsspec():
    store = BlobStore("memory://pipeline-test-blobs")
    blob = store.put(b"%PDF-1.7")
    assert store.get(blob.uri) == b"%PDF-1.7"


def test_missing_blob_is_a_blob_store_error(tmp_path):
    store = BlobStore(str(tmp_path))
    with pytest.raises(BlobStoreError):
        store.get(store.uri_for("0" * 64))


def test_dead_letter_keeps_binary_values_replayable():
    at = datetime(2026, 11, 23, tzinfo=UTC)
    binary = DeadLetter.from_failure(stage="ingest", error=ValueError("bad"), failed_at=at,
                                     source_topic="inbound.raw", value=b"\xff\xfe\x00")
    text = DeadLetter.from_failure(stage="ingest", error=ValueError("bad"), failed_at=at,
                                   source_topic="inbound.raw", value=b'{"a": 1}', key=b"k")
    assert binary.value_encoding == "base64" and binary.original_value() == b"\xff\xfe\x00"
    assert text.value == '{"a": 1}' and text.key == "k" and text.error_type == "ValueError"
    back = DeadLetter.model_validate_json(binary.model_dump_json())
    assert back.original_value() == b"\xff\xfe\x00"


def test_catalogue_names_are_unique_and_prefixed():
    names = [entry.name for entry in CATALOGUE]
    assert len(names) == len(set(names))
    assert spec(Topic.DIRECTORY).compacted
    assert spec("queue.billing").key == "account id"
    prefixed = TopicNames("eu.")
    assert prefixed(Topic.INBOUND_RAW) == "eu.inbound.raw"
    assert prefixed.queue("billing") == "eu.queue.billing"
    assert prefixed.logical("eu.cases.routed") == "cases.routed"
    with pytest.raises(KeyError):
        spec("no.such.topic")
