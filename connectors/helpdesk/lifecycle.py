"""Helpdesk webhooks → ``cases.events``. Pure functions: parse a body, say what it means.

A call is one of three things: a lifecycle change of a pipeline case (an ``Outcome`` with
its ``CaseEvent``), something that is not ours to act on (``Outcome.ignored``: a ticket the
pipeline did not open, a state that says nothing about open/closed), or a malformed body
(``InvalidPayload``, answered 422). Merges in Zammad need one REST look-up (the target's
case id), which the endpoint does; ``zammad_event`` says so with ``needs_merge_target``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from pipeline.caseevents import CaseEvent
from pipeline.errors import InvalidPayload

ZAMMAD_CLOSED = frozenset({"closed"})
ZAMMAD_OPEN = frozenset({"open", "pending reminder", "pending close"})
ZAMMAD_MERGED = "merged"


@dataclass(frozen=True)
class Outcome:
    event: CaseEvent | None = None
    ignored: str | None = None
    # Zammad merge: the source ticket's id, whose parent ticket names the target case.
    needs_merge_target: str | None = None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidPayload(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidPayload("body must be a JSON object")
    return data


def _name(value: object) -> str:
    """Zammad's payload names a state as a string, or as an object with a name."""
    if isinstance(value, dict):
        value = value.get("name")
    return str(value or "").strip().lower()


def _who(value: object) -> str | None:
    if isinstance(value, dict):
        return str(value.get("login") or value.get("email") or value.get("id") or "") or None
    return str(value) if value else None


def _when(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _event(**fields: Any) -> CaseEvent:
    try:
        return CaseEvent(**fields)
    except ValidationError as exc:
        raise InvalidPayload(f"not a case event: {exc.errors()[0]['msg']}") from exc


def zammad_event(body: bytes, case_field: str, account_field: str) -> Outcome:
    """A Zammad trigger webhook (default payload: ``{"ticket": {...}, "article": {...}}``)."""
    data = _json_object(body)
    ticket = data.get("ticket")
    if not isinstance(ticket, dict):
        raise InvalidPayload("ticket: missing (a Zammad trigger webhook carries the ticket)")
    case_id, account = ticket.get(case_field), ticket.get(account_field)
    if not case_id:
        return Outcome(ignored=f"ticket {ticket.get('number')} has no {case_field}: "
                               "not opened by the pipeline")
    if not account:
        raise InvalidPayload(f"ticket.{account_field}: missing for case {case_id}")
    state = _name(ticket.get("state"))
    common = {"case_id": str(case_id), "account_id": str(account),
              "at": _when(ticket.get("updated_at")), "by": _who(ticket.get("updated_by"))}
    if state in ZAMMAD_CLOSED:
        return Outcome(_event(event="closed", **common))
    if state in ZAMMAD_OPEN:
        return Outcome(_event(event="reopened", subject=ticket.get("title"), **common))
    if state == ZAMMAD_MERGED:
        if ticket.get("id") is None:
            raise InvalidPayload("ticket.id: missing on a merged ticket")
        return Outcome(_event(event="merged", **common), needs_merge_target=str(ticket["id"]))
    return Outcome(ignored=f"state {state or '(none)'} says nothing about open or closed")


def chatwoot_event(body: bytes, case_attribute: str, account_attribute: str,
                   merged_attribute: str = "support_merged_into") -> Outcome:
    """A Chatwoot webhook: ``conversation_status_changed`` or ``conversation_updated``."""
    data = _json_object(body)
    kind = data.get("event")
    if kind not in ("conversation_status_changed", "conversation_updated"):
        return Outcome(ignored=f"event {kind!r} is not a conversation lifecycle event")
    attributes = data.get("custom_attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise InvalidPayload("custom_attributes must be an object")
    attributes = attributes or {}
    case_id, account = attributes.get(case_attribute), attributes.get(account_attribute)
    if not case_id:
        return Outcome(ignored=f"conversation {data.get('id')} has no {case_attribute}")
    if not account:
        raise InvalidPayload(f"custom_attributes.{account_attribute}: missing for case {case_id}")
    status = str(data.get("status") or "").lower()
    changed = _changed(data.get("changed_attributes"))
    common = {"case_id": str(case_id), "account_id": str(account),
              "at": _when(data.get("updated_at") or data.get("timestamp"))}
    into = attributes.get(merged_attribute)
    if merged_attribute in changed and into and into != case_id:
        return Outcome(_event(event="merged", into_case_id=str(into), **common))
    if kind == "conversation_updated" and "status" not in changed:
        return Outcome(ignored="conversation updated without a status change")
    if status == "resolved":
        return Outcome(_event(event="closed", **common))
    if status == "open":
        return Outcome(_event(event="reopened", **common))
    return Outcome(ignored=f"status {status or '(none)'} says nothing about open or closed")


def _changed(value: object) -> set[str]:
    """Names in Chatwoot's ``changed_attributes`` (a list of one-key objects, or an object)."""
    if isinstance(value, dict):
        return set(value)
    if isinstance(value, list):
        return {k for item in value if isinstance(item, dict) for k in item}
    return set()


def webhook_event(body: bytes) -> Outcome:
    """The generic webhook's callback: a ``CaseEvent`` as JSON (docs/helpdesk.md)."""
    data = _json_object(body)
    fields = {k: data.get(k) for k in ("case_id", "account_id", "event", "into_case_id", "by",
                                       "subject") if data.get(k) is not None}
    return Outcome(_event(at=_when(data.get("at")), **fields))
