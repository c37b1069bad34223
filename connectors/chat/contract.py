"""The in-app chat contract: the JSON the app's backend POSTs, and its signature.

The backend signs the raw body with HMAC-SHA256 and a shared secret, and sends
``X-Pipeline-Signature: sha256=<hex>``. The user is already logged in to the app, so the
message arrives identified (user id, account id, email).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.envelope import AppIdentity, Channel, Envelope, Sender, Thread
from pipeline.errors import InvalidPayload, SignatureError

SIGNATURE_SCHEME = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value the app's backend sends for ``body``."""
    return SIGNATURE_SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> None:
    """Raise SignatureError unless ``header`` is the HMAC of ``body`` (constant-time compare)."""
    if not header:
        raise SignatureError("missing signature header")
    if not hmac.compare_digest(header.strip().encode(), sign(body, secret).encode()):
        raise SignatureError("signature does not match the body")


class ChatUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    account_id: str = Field(min_length=1, max_length=200)
    email: str | None = Field(None, max_length=320)
    name: str | None = Field(None, max_length=200)


class ChatAttachment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=3, max_length=200)
    data_base64: str

    def decoded(self) -> bytes:
        try:
            return base64.b64decode(self.data_base64, validate=True)
        except binascii.Error as exc:
            raise InvalidPayload(f"attachments: {self.filename}: data_base64 is not base64") from exc


class ChatMessage(BaseModel):
    """One chat message as the app's backend sends it."""

    model_config = ConfigDict(extra="ignore")

    message_id: str = Field(min_length=1, max_length=200)
    conversation_id: str | None = Field(None, max_length=200)
    sent_at: datetime
    text: str = Field("", max_length=100_000)
    # Where in the app the user wrote from ("ipad", "selfcare", ...), and on which page.
    surface: str | None = Field(None, max_length=100)
    page_url: str | None = Field(None, max_length=2000)
    user: ChatUser
    attachments: list[ChatAttachment] = Field(default_factory=list, max_length=10)

    @field_validator("sent_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (e.g. 2026-11-23T10:15:00+01:00)")
        return value


def parse_message(body: bytes) -> ChatMessage:
    """Read the body; InvalidPayload names the first fields that are wrong."""
    try:
        return ChatMessage.model_validate_json(body)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            field = ".".join(str(p) for p in err["loc"]) or "body"
            problems.append(f"{field}: {err['msg']}")
        raise InvalidPayload("; ".join(problems)) from exc


def to_envelope(message: ChatMessage, received_at: datetime) -> Envelope:
    """The envelope for a chat message (attachments are added by the connector once stored)."""
    user = message.user
    headers = {}
    if message.surface:
        headers["x-chat-surface"] = message.surface
    if message.page_url:
        headers["x-chat-page-url"] = message.page_url
    return Envelope(
        channel=Channel.CHAT,
        source_id=message.message_id,
        received_at=received_at,
        sender=Sender(
            email=user.email,
            display_name=user.name,
            app_identity=AppIdentity(user_id=user.id, account_id=user.account_id,
                                     email=user.email, name=user.name),
        ),
        text=message.text,
        thread=Thread(conversation_id=message.conversation_id),
        headers=headers,
    )
