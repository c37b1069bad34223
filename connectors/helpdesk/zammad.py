"""Zammad's REST API (docs.zammad.org, API → Ticket, Ticket Article, Ticket Merge).

* auth: ``Authorization: Token token=<access token>``;
* the case id lives in a ticket attribute (``case_field``, created in the Object Manager):
  ``GET /api/v1/tickets/search?query=<field>:"<case id>"&expand=true`` finds a ticket made
  before, so a redelivery never opens a second one;
* ``POST /api/v1/tickets`` with its first article; ``POST /api/v1/ticket_articles`` for a
  follow-up, its ``message_id`` the pipeline's message id (checked with
  ``GET /api/v1/ticket_articles/by_ticket/{id}`` before posting);
* ``PUT /api/v1/ticket_merge/{source_id}/{target_number}``.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from connectors.helpdesk.base import KnownTickets, RestClient, TicketRef
from connectors.helpdesk.case import HelpdeskCase, details
from connectors.helpdesk.config import ZammadConfig
from pipeline.errors import BlobStoreError

# Article types by channel (all sent by the customer, so Zammad sends nothing out).
ARTICLE_TYPES = {"email": "web", "chat": "chat", "whatsapp": "note", "voicemail": "phone"}


class Zammad:
    name = "zammad"

    def __init__(self, config: ZammadConfig, read_blob: Callable[[str], Awaitable[bytes]],
                 timeout_seconds: float) -> None:
        self.config = config
        self._read_blob = read_blob
        self.rest = RestClient(self.name, config.url, {
            "Authorization": f"Token token={config.token.get_secret_value()}"}, timeout_seconds)
        self._known = KnownTickets()

    async def find_ticket(self, case_id: str) -> TicketRef | None:
        if (known := self._known.get(case_id)) is not None:
            return known
        found = await self.rest.call("GET", "/api/v1/tickets/search", params={
            "query": f'{self.config.case_field}:"{case_id}"', "expand": "true", "limit": "2"})
        tickets = found if isinstance(found, list) else (found or {}).get("tickets", [])
        for ticket in tickets:
            if isinstance(ticket, dict) and ticket.get(self.config.case_field) == case_id:
                return self._known.remember(case_id, TicketRef(self.name, str(ticket["id"]),
                                                         str(ticket.get("number") or "")))
        return None


    async def create_ticket(self, case: HelpdeskCase) -> TicketRef:
        existing = await self.find_ticket(case.case_id)
        if existing is not None:
            return existing
        article = await self._article(case, first=True)
        ticket = await self.rest.call("POST", "/api/v1/tickets", self.ticket_payload(case, article))
        return self._known.remember(case.case_id, TicketRef(self.name, str(ticket["id"]),
                                                      str(ticket.get("number") or ""), True))

    def ticket_payload(self, case: HelpdeskCase, article: dict[str, Any]) -> dict[str, Any]:
        c = self.config
        email = case.customer.email or c.fallback_customer_email
        return {
            "title": case.title,
            "group": c.groups.get(case.queue, c.default_group),
            "priority": c.priorities.get(case.priority, c.priorities.get("normal", "2 normal")),
            "customer_id": f"guess:{email}",
            "state": "new",
            c.case_field: case.case_id,
            c.account_field: case.customer.account_id,
            "article": article,
        }

    async def _article(self, case: HelpdeskCase, *, first: bool) -> dict[str, Any]:
        body = case.body + ("\n\n--\n" + details(case) if first else "")
        return {
            "subject": case.title,
            "body": body,
            "content_type": "text/plain",
            "type": ARTICLE_TYPES.get(case.customer.channel, "note"),
            "sender": "Customer",
            "internal": False,
            "message_id": case.message_id,
            "attachments": await self._attachments(case),
        }

    async def _attachments(self, case: HelpdeskCase) -> list[dict[str, str]]:
        files = []
        for item in case.attachments:
            if item.size > self.config.max_attachment_bytes or not item.uri:
                continue
            try:
                data = await self._read_blob(item.uri)
            except BlobStoreError:
                continue  # the body names the file and its URI; the ticket still goes
            files.append({"filename": item.filename or "attachment", "mime-type": item.content_type,
                          "data": base64.b64encode(data).decode()})
        return files

    async def add_follow_up(self, case: HelpdeskCase) -> TicketRef:
        ticket = await self.find_ticket(case.case_id)
        if ticket is None:  # the opening message went elsewhere or was dead-lettered
            return await self.create_ticket(case)
        articles = await self.rest.call(
            "GET", f"/api/v1/ticket_articles/by_ticket/{ticket.ticket_id}") or []
        if any(a.get("message_id") == case.message_id for a in articles if isinstance(a, dict)):
            return ticket
        article = await self._article(case, first=False)
        await self.rest.call("POST", "/api/v1/ticket_articles",
                             {"ticket_id": int(ticket.ticket_id), **article})
        return ticket

    async def merge(self, source_case_id: str, target_case_id: str) -> bool:
        source = await self.find_ticket(source_case_id)
        target = await self.find_ticket(target_case_id)
        if source is None or target is None or not target.number:
            return False
        await self.rest.call("PUT", f"/api/v1/ticket_merge/{source.ticket_id}/{target.number}")
        return True

    async def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        found = await self.rest.call("GET", f"/api/v1/tickets/{ticket_id}", allow=(404,))
        return found if isinstance(found, dict) else None

    async def merged_into(self, ticket_id: str) -> dict[str, Any] | None:
        """The ticket a merged ticket went into (Zammad links it as the "parent")."""
        links = await self.rest.call("GET", "/api/v1/links", params={
            "link_object": "Ticket", "link_object_value": ticket_id}, allow=(404,)) or {}
        for link in links.get("links", []):
            if link.get("link_type") == "parent" and link.get("link_object") == "Ticket":
                return await self.ticket(str(link.get("link_object_value")))
        return None

    async def close(self) -> None:
        await self.rest.close()
