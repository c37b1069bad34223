"""Settings of the helpdesk connector (section ``helpdesk`` of pipeline.yaml).

One consumer group reads every ``queue.<name>`` topic; ``queues`` says which helpdesk
receives each queue (``"*"``: every queue not named). Each helpdesk has its own section,
with its REST credentials and the secret of the webhook it calls back.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

HelpdeskName = Literal["zammad", "chatwoot", "webhook"]


class RetryConfig(BaseModel):
    """How a helpdesk that is down (or answers 5xx/429) is retried: the consumer waits."""

    initial_backoff_seconds: float = Field(0.5, gt=0)
    max_backoff_seconds: float = Field(30.0, gt=0)
    # A Retry-After longer than this is shortened to it (a helpdesk asking for an hour).
    max_retry_after_seconds: float = Field(300.0, gt=0)
    request_timeout_seconds: float = Field(15.0, gt=0)


class ZammadConfig(BaseModel):
    enabled: bool = False
    url: str = "http://localhost:3000"
    # Profile → Token Access (permission ticket.agent); sent as "Token token=...".
    token: SecretStr = SecretStr("")
    # queue → Zammad group; queues not listed go to default_group.
    groups: dict[str, str] = Field(default_factory=dict)
    default_group: str = "Users"
    # routing.priority → Zammad priority name.
    priorities: dict[str, str] = Field(default_factory=lambda: {
        "urgent": "3 high", "high": "3 high", "normal": "2 normal", "low": "1 low"})
    # Ticket attributes (Object Manager, type text) holding the case id and the account:
    # the case id is the ticket's external reference (idempotency, webhooks → case events).
    case_field: str = "support_case_id"
    account_field: str = "support_account_id"
    # Customers without an e-mail address (WhatsApp, voicemail) are filed under this one;
    # their phone number is in the article.
    fallback_customer_email: str = "unknown-customer@support.invalid"
    max_attachment_bytes: int = Field(10 * 1024 * 1024, gt=0)
    # The trigger webhook Zammad calls on close/reopen/merge, signed with this token.
    webhook_path: str = "/helpdesk/zammad"
    webhook_secret: SecretStr = SecretStr("")


class ChatwootConfig(BaseModel):
    enabled: bool = False
    url: str = "http://localhost:3000"
    # Profile settings → Access Token; sent as the api_access_token header.
    token: SecretStr = SecretStr("")
    account_id: int = 1
    # The API inbox conversations are created in.
    inbox_id: int = 1
    # queue → Chatwoot team id (Chatwoot's "group"); queues not listed get no team.
    teams: dict[str, int] = Field(default_factory=dict)
    # routing.priority → Chatwoot conversation priority (urgent, high, medium, low).
    priorities: dict[str, str] = Field(default_factory=lambda: {
        "urgent": "urgent", "high": "high", "normal": "medium", "low": "low"})
    # Conversation custom attribute (type text) holding the case id, and the account.
    case_attribute: str = "support_case_id"
    account_attribute: str = "support_account_id"
    webhook_path: str = "/helpdesk/chatwoot"
    # The webhook's secret (Chatwoot signs X-Chatwoot-Signature with it).
    webhook_secret: SecretStr = SecretStr("")


class WebhookConfig(BaseModel):
    """A generic signed webhook for teams on another tool (contract: docs/helpdesk.md)."""

    enabled: bool = False
    url: str = ""
    # Signs X-Pipeline-Signature = sha256=HMAC(secret, "<timestamp>.<body>"), both ways.
    secret: SecretStr = SecretStr("")
    # Where the tool posts lifecycle events back (same signature).
    webhook_path: str = "/helpdesk/webhook"


class HelpdeskConfig(BaseModel):
    enabled: bool = False
    # queue → helpdesk; "*" matches every queue not listed. Empty: every queue to the one
    # enabled helpdesk.
    queues: dict[str, HelpdeskName] = Field(default_factory=dict)
    # The consumer group is "<worker.app_id>-<group_suffix>" (pipeline status shows its lag).
    group_suffix: str = "helpdesk"
    # Time a webhook caller waits for the broker's acknowledgement before a 503.
    publish_timeout_seconds: float = Field(10.0, gt=0)
    # Confirmed offsets are committed at most this often (and on stop or rebalance).
    commit_interval_seconds: float = Field(1.0, gt=0)
    metrics_interval_seconds: float = Field(10.0, gt=0)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    zammad: ZammadConfig = Field(default_factory=ZammadConfig)
    chatwoot: ChatwootConfig = Field(default_factory=ChatwootConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)

    @model_validator(mode="after")
    def _queues_name_enabled_helpdesks(self) -> HelpdeskConfig:
        if not self.enabled:
            return self
        on = self.enabled_helpdesks()
        if not on:
            raise ValueError("helpdesk.enabled but none of zammad, chatwoot, webhook is enabled")
        wrong = sorted({h for h in self.queues.values() if h not in on})
        if wrong:
            raise ValueError(f"queues name helpdesk(s) not enabled: {', '.join(wrong)}")
        if not self.queues and len(on) > 1:
            raise ValueError("several helpdesks enabled: say which queues go where "
                             "(helpdesk.queues, '*' for the rest)")
        return self

    def enabled_helpdesks(self) -> list[HelpdeskName]:
        flags: dict[HelpdeskName, bool] = {"zammad": self.zammad.enabled,
                                           "chatwoot": self.chatwoot.enabled,
                                           "webhook": self.webhook.enabled}
        return [name for name, on in flags.items() if on]

    def helpdesk_for(self, queue: str) -> HelpdeskName | None:
        """The helpdesk a queue's cases go to (None: the queue is not delivered)."""
        if queue in self.queues:
            return self.queues[queue]
        if "*" in self.queues:
            return self.queues["*"]
        on = self.enabled_helpdesks()
        return on[0] if not self.queues and len(on) == 1 else None
