"""The generic signed webhook: the case as JSON, POSTed to the team's own tool.

Every request (both ways) carries ``X-Pipeline-Timestamp`` (Unix seconds) and
``X-Pipeline-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``;
``Idempotency-Key`` is the message id, so the receiver drops a redelivery. Any 2xx is a
confirmation; its JSON may name the ``ticket_id``. 5xx/429 are retried, 4xx dead-lettered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from connectors.helpdesk.base import RestClient, TicketRef
from connectors.helpdesk.case import HelpdeskCase
from connectors.helpdesk.config import WebhookConfig
from connectors.helpdesk.signatures import (
    TIMESTAMP_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    sign_timestamped,
)


def case_document(case: HelpdeskCase, event: str) -> dict[str, Any]:
    """The JSON body: the event and every field of the case (dates in ISO 8601)."""
    c = case.customer
    return {
        "event": event, "case_id": case.case_id, "message_id": case.message_id,
        "queue": case.queue, "priority": case.priority, "category": case.category,
        "sla_due_at": case.sla_due_at.isoformat() if case.sla_due_at else None,
        "resolution_due_at": case.resolution_due_at.isoformat() if case.resolution_due_at else None,
        "received_at": case.received_at.isoformat(), "title": case.title, "body": case.body,
        "customer": {"account_id": c.account_id, "account_name": c.account_name,
                     "employee_id": c.employee_id, "name": c.name, "email": c.email,
                     "phone": c.phone, "channel": c.channel, "address": c.address,
                     "identified": c.identified},
        "references": case.references, "evidence": case.evidence, "matched_by": case.matched_by,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "uri": a.uri, "kind": a.kind.value} for a in case.attachments],
    }


class SignedWebhook:
    name = "webhook"

    def __init__(self, config: WebhookConfig, timeout_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.rest = RestClient(self.name, config.url, {"Content-Type": "application/json"},
                               timeout_seconds)
        self._clock = clock

    async def _post(self, document: dict[str, Any], key: str) -> Any:
        body = json.dumps(document, ensure_ascii=False).encode()
        stamp = str(int(self._clock()))
        return await self.rest.call("POST", "", data=body, headers={
            TIMESTAMP_HEADER: stamp, "Idempotency-Key": key,
            WEBHOOK_SIGNATURE_HEADER: sign_timestamped(body, stamp,
                                                       self.config.secret.get_secret_value())})

    async def _deliver(self, case: HelpdeskCase, event: str) -> TicketRef:
        answer = await self._post(case_document(case, event), case.message_id)
        ticket = answer.get("ticket_id") if isinstance(answer, dict) else None
        return TicketRef(self.name, str(ticket or case.case_id), None, event == "case.opened")

    async def create_ticket(self, case: HelpdeskCase) -> TicketRef:
        return await self._deliver(case, "case.opened")

    async def add_follow_up(self, case: HelpdeskCase) -> TicketRef:
        return await self._deliver(case, "case.follow_up")

    async def merge(self, source_case_id: str, target_case_id: str) -> bool:
        await self._post({"event": "case.merged", "case_id": source_case_id,
                          "into_case_id": target_case_id},
                         f"merge:{source_case_id}:{target_case_id}")
        return True

    async def close(self) -> None:
        await self.rest.close()
