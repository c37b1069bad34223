"""Errors of the helpdesk connector.

    ConnectorError (pipeline.errors)
    └── HelpdeskError              a helpdesk call did not succeed
        ├── HelpdeskUnavailable    down, timed out, 5xx or 429: retry later (retry_after)
        └── HelpdeskRejected       4xx: the helpdesk refuses this ticket; dead letter it
"""

from __future__ import annotations

from pipeline.errors import ConnectorError


class HelpdeskError(ConnectorError):
    """A helpdesk call did not succeed."""

    def __init__(self, message: str, *, helpdesk: str, status: int | None = None,
                 answer: str | None = None) -> None:
        super().__init__(message)
        self.helpdesk = helpdesk
        self.status = status
        self.answer = answer


class HelpdeskUnavailable(HelpdeskError):
    """The helpdesk is away (connection, timeout, 5xx, 429); the same call can be retried."""

    def __init__(self, message: str, *, helpdesk: str, status: int | None = None,
                 answer: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, helpdesk=helpdesk, status=status, answer=answer)
        self.retry_after = retry_after


class HelpdeskRejected(HelpdeskError):
    """The helpdesk answered 4xx: the ticket is invalid for it until someone fixes it."""
