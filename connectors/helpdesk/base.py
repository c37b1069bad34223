"""The one interface every helpdesk implements, and the HTTP call they share.

A helpdesk is told three things: a case opened (``create_ticket``), a customer wrote again
on a case (``add_follow_up``), two cases are one (``merge``). Each call is idempotent by the
case id (ticket) and the message id (article): a redelivery finds what it made before.
Errors are translated here: ``HelpdeskUnavailable`` (retry) or ``HelpdeskRejected`` (4xx).
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp

from connectors.helpdesk.case import HelpdeskCase
from connectors.helpdesk.errors import HelpdeskRejected, HelpdeskUnavailable

ANSWER_CHARS = 2000


@dataclass(frozen=True)
class TicketRef:
    """Where a case lives in the helpdesk; ``created`` is False when it already existed."""

    helpdesk: str
    ticket_id: str
    number: str | None = None
    created: bool = False


class KnownTickets:
    """Case id → ticket, for the tickets this process made or found: a follow-up of a
    recent case needs no search. Bounded; the oldest entry goes first."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._tickets: dict[str, TicketRef] = {}

    def get(self, case_id: str) -> TicketRef | None:
        return self._tickets.get(case_id)

    def remember(self, case_id: str, ref: TicketRef) -> TicketRef:
        """Keep ``ref`` (as not created: a second look-up finds it existing) and return it."""
        if len(self._tickets) >= self._limit:
            self._tickets.pop(next(iter(self._tickets)))
        self._tickets[case_id] = TicketRef(ref.helpdesk, ref.ticket_id, ref.number)
        return ref


class Helpdesk(Protocol):
    name: str

    async def create_ticket(self, case: HelpdeskCase) -> TicketRef:
        """The case's ticket, created unless one carries its case id already."""

    async def add_follow_up(self, case: HelpdeskCase) -> TicketRef:
        """The message added to its case's ticket (once), the ticket created if missing."""

    async def merge(self, source_case_id: str, target_case_id: str) -> bool:
        """Merge the source case's ticket into the target's; False if the API cannot."""

    async def close(self) -> None:
        """Release the HTTP session."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RestClient:
    """One aiohttp session to one helpdesk; ``call`` returns the JSON answer or raises."""

    def __init__(self, helpdesk: str, base_url: str, headers: dict[str, str],
                 timeout_seconds: float) -> None:
        self.helpdesk = helpdesk
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def call(self, method: str, path: str, payload: Any = None, *,
                   params: dict[str, str] | None = None, data: bytes | None = None,
                   headers: dict[str, str] | None = None, allow: tuple[int, ...] = ()) -> Any:
        """JSON of a 2xx answer (None when empty); statuses in ``allow`` return None too."""
        url = self.base_url + path
        try:
            async with self._open().request(
                    method, url, json=payload if data is None else None, data=data,
                    params=params, headers=headers) as resp:
                text = await resp.text()
                status = resp.status
                retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HelpdeskUnavailable(f"{self.helpdesk}: {method} {path}: {exc!r}",
                                      helpdesk=self.helpdesk) from exc
        if 200 <= status < 300:
            return json.loads(text) if text.strip() else None
        if status in allow:
            return None
        answer = text[:ANSWER_CHARS]
        message = f"{self.helpdesk}: {method} {path} answered {status}: {' '.join(answer.split())}"
        if status == 429 or status >= 500 or status == 408:
            raise HelpdeskUnavailable(message, helpdesk=self.helpdesk, status=status,
                                      answer=answer, retry_after=retry_after)
        raise HelpdeskRejected(message, helpdesk=self.helpdesk, status=status, answer=answer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
