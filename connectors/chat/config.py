"""Settings of the in-app chat connector (section ``chat`` of pipeline.yaml)."""

from pydantic import BaseModel, Field, SecretStr


class ChatConfig(BaseModel):
    enabled: bool = True
    path: str = "/chat/messages"
    # Shared with the app's backend, which signs each body with HMAC-SHA256.
    secret: SecretStr = SecretStr("change-me-in-production")
    signature_header: str = "X-Pipeline-Signature"
    max_body_bytes: int = Field(1_048_576, gt=0)
    max_attachment_bytes: int = Field(10_485_760, gt=0)
