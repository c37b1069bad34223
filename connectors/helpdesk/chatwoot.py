"""Chatwoot's application API (developers.chatwoot.com, Application APIs).

* auth: the ``api_access_token`` header (an agent's or a bot's access token);
* a contact per customer employee, found by ``identifier``
  (``GET .../contacts/search?q=``) or created (``POST .../contacts``);
* a conversation per case in the API inbox, the case id in a conversation custom attribute
  (``case_attribute``, defined in Settings → Custom attributes): found with
  ``POST .../conversations/filter`` before creating (``POST .../conversations``), its
  priority set with ``POST .../conversations/{id}/toggle_priority``;
* a follow-up is an incoming message on the conversation, its message id in
  ``content_attributes`` (checked against ``GET .../conversations/{id}/messages``);
* Chatwoot has no API to merge conversations: a private note says where the case went.
"""

from __future__ import annotations

from typing import Any

from connectors.helpdesk.base import KnownTickets, RestClient, TicketRef
from connectors.helpdesk.case import Customer, HelpdeskCase, details
from connectors.helpdesk.config import ChatwootConfig

MESSAGE_ID_ATTRIBUTE = "pipeline_message_id"


class Chatwoot:
    name = "chatwoot"

    def __init__(self, config: ChatwootConfig, timeout_seconds: float) -> None:
        self.config = config
        self.rest = RestClient(self.name, config.url, {
            "api_access_token": config.token.get_secret_value()}, timeout_seconds)
        self.base = f"/api/v1/accounts/{config.account_id}"
        self._known = KnownTickets()

    @staticmethod
    def contact_identifier(customer: Customer) -> str:
        who = customer.employee_id or customer.address
        return f"{customer.account_id}:{who}"

    async def contact_id(self, customer: Customer) -> int:
        identifier = self.contact_identifier(customer)
        found = await self.rest.call("GET", f"{self.base}/contacts/search",
                                     params={"q": identifier})
        for contact in (found or {}).get("payload", []):
            if contact.get("identifier") == identifier:
                return int(contact["id"])
        created = await self.rest.call("POST", f"{self.base}/contacts", {
            "inbox_id": self.config.inbox_id, "name": customer.name or customer.address,
            "email": customer.email, "phone_number": customer.phone,
            "identifier": identifier,
            "custom_attributes": {"account_id": customer.account_id,
                                  "account_name": customer.account_name or ""},
        })
        payload = (created or {}).get("payload", {})
        return int((payload.get("contact") or payload)["id"])

    async def find_conversation(self, case_id: str) -> TicketRef | None:
        if (known := self._known.get(case_id)) is not None:
            return known
        found = await self.rest.call("POST", f"{self.base}/conversations/filter", {"payload": [
            {"attribute_key": self.config.case_attribute, "filter_operator": "equal_to",
             "values": [case_id], "query_operator": None}]})
        for conv in (found or {}).get("payload", []):
            if (conv.get("custom_attributes") or {}).get(self.config.case_attribute) == case_id:
                return self._known.remember(case_id, TicketRef(self.name, str(conv["id"]),
                                                         str(conv.get("display_id") or conv["id"])))
        return None


    def conversation_payload(self, case: HelpdeskCase, contact_id: int) -> dict[str, Any]:
        c = self.config
        payload: dict[str, Any] = {
            "inbox_id": c.inbox_id, "contact_id": contact_id, "status": "open",
            "custom_attributes": {c.case_attribute: case.case_id,
                                  c.account_attribute: case.customer.account_id},
            "additional_attributes": {"queue": case.queue, "category": case.category,
                                      "channel": case.customer.channel},
            "message": {"content": case.body + "\n\n--\n" + details(case)},
        }
        if case.queue in c.teams:
            payload["team_id"] = c.teams[case.queue]
        return payload

    async def create_ticket(self, case: HelpdeskCase) -> TicketRef:
        existing = await self.find_conversation(case.case_id)
        if existing is not None:
            return existing
        contact = await self.contact_id(case.customer)
        conv = await self.rest.call("POST", f"{self.base}/conversations",
                                    self.conversation_payload(case, contact))
        conv_id = str(conv["id"])
        priority = self.config.priorities.get(case.priority)
        if priority:
            await self.rest.call("POST", f"{self.base}/conversations/{conv_id}/toggle_priority",
                                 {"priority": priority})
        return self._known.remember(case.case_id, TicketRef(self.name, conv_id, conv_id, True))

    async def add_follow_up(self, case: HelpdeskCase) -> TicketRef:
        conv = await self.find_conversation(case.case_id)
        if conv is None:
            return await self.create_ticket(case)
        path = f"{self.base}/conversations/{conv.ticket_id}/messages"
        listed = await self.rest.call("GET", path) or {}
        for message in listed.get("payload", []):
            if (message.get("content_attributes") or {}).get(MESSAGE_ID_ATTRIBUTE) == case.message_id:
                return conv
        await self.rest.call("POST", path, {
            "content": case.body, "message_type": "incoming", "private": False,
            "content_attributes": {MESSAGE_ID_ATTRIBUTE: case.message_id}})
        return conv

    async def merge(self, source_case_id: str, target_case_id: str) -> bool:
        source = await self.find_conversation(source_case_id)
        target = await self.find_conversation(target_case_id)
        if source is None or target is None:
            return False
        await self.rest.call("POST", f"{self.base}/conversations/{source.ticket_id}/messages", {
            "content": f"Case {source_case_id} was merged into case {target_case_id} "
                       f"(conversation #{target.number}); follow-ups go there.",
            "message_type": "outgoing", "private": True})
        return False  # noted, not merged: Chatwoot's API has no conversation merge

    async def close(self) -> None:
        await self.rest.close()
