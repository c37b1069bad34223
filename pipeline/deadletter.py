"""Dead-letter records: what a stage or connector could not process, with the error.

A dead-letter record keeps the original bytes (or a blob URI for large raw input such as
an unparseable email), so ``pipeline deadletter replay`` can re-inject it after a fix.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class DeadLetter(BaseModel):
    """One record a stage gave up on; keyed by the original key on ``pipeline.deadletter``."""

    stage: str
    error_type: str
    error: str
    failed_at: datetime
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    message_id: str | None = None
    value: str | None = None
    value_encoding: Literal["utf-8", "base64"] = "utf-8"
    # Large raw input kept in the blob store instead of inline.
    raw_uri: str | None = None

    @classmethod
    def from_failure(cls, *, stage: str, error: BaseException, failed_at: datetime,
                     source_topic: str, value: bytes | None, key: bytes | str | None = None,
                     partition: int | None = None, offset: int | None = None,
                     message_id: str | None = None, raw_uri: str | None = None) -> DeadLetter:
        text, encoding = _encode(value)
        return cls(
            stage=stage,
            error_type=type(error).__name__,
            error=str(error)[:4000] or repr(error),
            failed_at=failed_at,
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            key=key.decode("utf-8", "replace") if isinstance(key, bytes) else key,
            message_id=message_id,
            value=text,
            value_encoding=encoding,
            raw_uri=raw_uri,
        )

    def original_value(self) -> bytes | None:
        """The bytes the stage received, for a replay."""
        if self.value is None:
            return None
        if self.value_encoding == "base64":
            try:
                return base64.b64decode(self.value)
            except binascii.Error:
                return None
        return self.value.encode("utf-8")


def _encode(value: bytes | None) -> tuple[str | None, Literal["utf-8", "base64"]]:
    if value is None:
        return None, "utf-8"
    try:
        return value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), "base64"
