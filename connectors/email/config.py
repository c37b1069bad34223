"""Settings of the IMAP email connector (section ``email`` of pipeline.yaml)."""

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class EmailConfig(BaseModel):
    enabled: bool = False
    host: str = "localhost"
    port: int = 993
    security: Literal["tls", "starttls", "plain"] = "tls"
    username: str = ""
    password: SecretStr = SecretStr("")
    folders: list[str] = Field(default_factory=lambda: ["INBOX"])
    poll_interval_seconds: float = Field(30.0, gt=0)
    max_message_bytes: int = Field(25 * 1024 * 1024, gt=0)
