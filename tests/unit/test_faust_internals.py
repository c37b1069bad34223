"""Fails loudly when a faust upgrade moves the consumer internals pipeline/faust_app.py uses.

The delivery-order fix (pipeline/delivery.py) turns faust's read-offset drop off for the
hops' inputs by replacing ``Consumer._read_offset``, caps ``_filter_committable_offsets``,
and reads ``_committed_offset`` and ``Message.generation_id``. If any of these moves, a
batch can again be lost after a seek; these checks say where to look.
"""

from __future__ import annotations

import inspect

import faust
import pytest
from faust.transport import consumer as faust_consumer
from faust.types import TP
from faust.types.tuples import Message

from pipeline import faust_app
from pipeline.errors import ConfigError


def test_faust_is_the_version_the_internals_were_checked_against() -> None:
    assert faust.__version__ == faust_app.CHECKED_FAUST
    faust_app.check_faust_version()


def test_another_faust_version_is_refused_with_where_to_look() -> None:
    with pytest.raises(ConfigError, match="faust-streaming 0.15.3, found 0.16.0.*_drain_messages"):
        faust_app.check_faust_version("0.16.0")


def test_the_drain_loop_drops_by_the_read_offset_map_the_pipeline_replaces() -> None:
    drain = inspect.getsource(faust_consumer.Consumer._drain_messages)
    # The map is looked up per record through its __getitem__, bound when the loop starts
    # (after the consumer's __init__, where the pipeline's map is put in place).
    assert "get_read_offset = self._read_offset.__getitem__" in drain
    assert "r_offset is None or offset >= r_offset" in drain
    init = inspect.getsource(faust_consumer.Consumer.__init__)
    assert "self._read_offset = defaultdict" in init
    assert "self._committed_offset = defaultdict" in init
    # Every commit's offsets pass through the method the pipeline caps.
    commit = inspect.getsource(faust_consumer.Consumer._commit_tps)
    assert "commit_offsets = self._filter_committable_offsets(tps)" in commit


def test_read_offsets_of_ordered_topics_never_drop_a_record() -> None:
    offsets = faust_app._ReadOffsets({"pipeline-inbound.raw"})
    ordered, other = TP("pipeline-inbound.raw", 0), TP("messages.spam", 0)
    offsets[ordered] = 227
    offsets[other] = 227
    assert offsets[ordered] is None  # every record is handed to the hop
    assert offsets[other] == 227
    assert offsets[TP("messages.spam", 1)] is None  # faust's default for an unread partition


def test_messages_carry_the_generation_they_were_fetched_in() -> None:
    assert "generation_id" in inspect.signature(Message.__init__).parameters
