"""What a ticket carries, read from a routed envelope. Pure functions: no I/O, no clock.

Every helpdesk gets the same ``HelpdeskCase``; each implementation only lays it out in its
own JSON. The case id is the ticket's external reference, the message id the article's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pipeline.envelope import Attachment, AttachmentKind, Envelope
from pipeline.errors import EnvelopeError

TITLE_CHARS = 120


@dataclass(frozen=True)
class Customer:
    """Who wrote: the customer account, the employee, and how to reach them back."""

    account_id: str
    account_name: str | None = None
    employee_id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    channel: str = ""
    address: str = ""  # the address the message came from, as the channel gave it
    identified: bool = False


@dataclass(frozen=True)
class HelpdeskCase:
    """One routed message, as a helpdesk ticket (or follow-up article) needs it."""

    case_id: str
    message_id: str
    action: str  # "opened": create the ticket; "merged": a follow-up on the case's ticket
    queue: str
    priority: str
    customer: Customer
    title: str
    body: str
    received_at: datetime
    category: str | None = None
    sla_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    references: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    matched_by: str | None = None
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def is_follow_up(self) -> bool:
        return self.action == "merged"


def case_from_envelope(envelope: Envelope) -> HelpdeskCase:
    """The helpdesk case of a routed envelope (EnvelopeError when it is not routed)."""
    if envelope.case is None or envelope.routing is None:
        raise EnvelopeError(f"message {envelope.id} has no case or routing: not a routed case")
    identity = envelope.identity
    sender = envelope.sender
    app = sender.app_identity
    account = (identity.account_id if identity and identity.account_id else None) or (
        app.account_id if app else None) or f"sender:{envelope.sender_key}"
    customer = Customer(
        account_id=account,
        account_name=identity.account_name if identity else None,
        employee_id=(identity.employee_id if identity else None) or (app.user_id if app else None),
        name=(identity.employee_name if identity else None) or sender.display_name
        or (app.name if app else None),
        email=sender.email or (app.email if app else None),
        phone=sender.phone,
        channel=envelope.channel.value,
        address=sender.address(),
        identified=bool(identity and identity.identified),
    )
    routing = envelope.routing
    return HelpdeskCase(
        case_id=envelope.case.case_id, message_id=envelope.id, action=envelope.case.action,
        queue=routing.queue, priority=routing.priority, customer=customer,
        title=ticket_title(envelope), body=ticket_body(envelope),
        received_at=envelope.received_at, category=routing.category,
        sla_due_at=routing.sla_due_at, resolution_due_at=routing.resolution_due_at,
        references=[f"{r.kind}:{r.value}" for r in envelope.refs],
        evidence=list(envelope.case.evidence), matched_by=envelope.case.matched_by,
        attachments=[a for a in envelope.attachments if a.uri and not a.error])


def ticket_title(envelope: Envelope) -> str:
    """The subject, else the first line of what was said, cut at a word."""
    text = envelope.subject or next(
        (line.strip() for line in envelope.full_text().splitlines() if line.strip()), "")
    if not text:
        text = f"{envelope.channel.value} message"
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[:TITLE_CHARS].rsplit(" ", 1)[0]
    return cut + "…"


def ticket_body(envelope: Envelope) -> str:
    """The text, each audio transcript with its recording, and the other attachments."""
    parts: list[str] = []
    if envelope.text:
        parts.append(envelope.text)
    by_uri = {t.attachment_uri: t for t in envelope.transcripts}
    for item in envelope.attachments:
        name = item.filename or item.uri or "attachment"
        if item.kind is AttachmentKind.AUDIO:
            transcript = by_uri.get(item.uri)
            said = transcript.text if transcript and transcript.text else "(no transcript)"
            lang = f", {transcript.language}" if transcript and transcript.language else ""
            parts.append(f"[audio {name}{lang}] {said}\nRecording: {item.uri}")
        elif item.error:
            parts.append(f"[attachment {name} not kept: {item.error}]")
        else:
            parts.append(f"[attachment {name}: {item.content_type}, {item.size} bytes]")
    for note in envelope.notes:
        parts.append(f"(note: {note})")
    return "\n\n".join(parts) or "(empty message)"


def details(case: HelpdeskCase) -> str:
    """A plain-text block of the case facts, appended to a ticket's first article."""
    c = case.customer
    lines = [
        f"Case: {case.case_id}",
        f"Customer account: {c.account_id}" + (f" ({c.account_name})" if c.account_name else ""),
        f"Employee: {c.name or '-'}" + (f" [{c.employee_id}]" if c.employee_id else "")
        + ("" if c.identified else " (not identified)"),
        f"Contact: {c.channel} {c.address}",
        f"Queue: {case.queue} · priority {case.priority}"
        + (f" · category {case.category}" if case.category else ""),
    ]
    if case.sla_due_at:
        lines.append(f"Answer due: {case.sla_due_at.isoformat()}")
    if case.resolution_due_at:
        lines.append(f"Resolution due: {case.resolution_due_at.isoformat()}")
    if case.references:
        lines.append("References: " + ", ".join(case.references))
    if case.evidence:
        lines.append(f"Case evidence ({case.matched_by}): " + "; ".join(case.evidence))
    return "\n".join(lines)
