"""Settings of the ingest stage (section ``ingest`` of pipeline.yaml)."""

from pydantic import BaseModel, Field


class IngestConfig(BaseModel):
    # Twilio retries for up to a day, IMAP re-scans after a UIDVALIDITY change: three days
    # covers both without keeping keys forever.
    idempotency_window_hours: float = Field(72.0, gt=0)
    max_text_chars: int = Field(20_000, gt=0)
    max_subject_chars: int = Field(500, gt=0)
