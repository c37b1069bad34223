"""One checkpoint format on connectors.state, and the two formats written before it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from connectors.email.checkpoint import Checkpoint as MailboxCheckpoint
from pipeline.kafka.checkpoints import Checkpoint

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_a_checkpoint_carries_its_position_and_time() -> None:
    stored = json.loads(MailboxCheckpoint(uidvalidity=7, last_uid=42).to_bytes(AT))
    assert stored == {"updated_at": "2026-11-24T09:00:00Z",
                      "position": {"uidvalidity": 7, "last_uid": 42}}
    assert MailboxCheckpoint.from_bytes(json.dumps(stored).encode()) == MailboxCheckpoint(7, 42)


def test_checkpoints_written_in_the_first_flat_formats_are_still_read() -> None:
    email = b'{"uidvalidity": 7, "last_uid": 42, "updated_at": "2026-11-24T09:00:00+00:00"}'
    assert MailboxCheckpoint.from_bytes(email) == MailboxCheckpoint(7, 42)
    whatsapp = Checkpoint.from_bytes(b'{"listed_until": "2026-11-24T09:00:00+00:00", '
                                     b'"injected": 3}')
    assert whatsapp.position == {"listed_until": "2026-11-24T09:00:00+00:00", "injected": 3}
    assert whatsapp.updated_at is None
