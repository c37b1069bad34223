"""What the helpdesk says happened to a case: the records of ``cases.events``.

Kernel module: the helpdesk connector writes these and dedup reads them; the record is the
contract between the two, so it lives below both (``pipeline.dedup.core`` re-exports it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class CaseEvent(BaseModel):
    """A helpdesk event on ``cases.events`` (key: case id). ``account_id`` is required:
    it is the key of ``messages.accepted`` (account id, or the sender key when unknown)."""

    case_id: str
    account_id: str
    event: Literal["closed", "reopened", "merged"]
    # For "merged": the case that absorbs ``case_id``.
    into_case_id: str | None = None
    at: datetime | None = None
    by: str | None = None
    # For "reopened" of a case dedup no longer remembers: a subject to compare new messages with.
    subject: str | None = None
