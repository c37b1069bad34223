"""Settings of the IMAP email connector (section ``email`` of pipeline.yaml).

One IMAP account, one or more mailboxes (folders) polled side by side, each with its own
connection (IDLE holds a connection per folder).
"""

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


class EmailConfig(BaseModel):
    enabled: bool = False
    host: str = "localhost"
    port: int = Field(993, ge=1, le=65535)
    # tls: IMAPS (993); starttls: upgrade a plain connection (143); plain: tests only.
    security: Literal["tls", "starttls", "plain"] = "tls"
    # A CA bundle to trust instead of the system's (a private CA, a test certificate).
    tls_ca_file: str | None = None
    username: str = ""
    password: SecretStr = SecretStr("")
    # The mailboxes to poll; each is checkpointed on its own (UIDVALIDITY + last UID).
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    # Wait for new mail with IDLE when the server offers it; otherwise poll this often.
    use_idle: bool = True
    poll_interval_seconds: float = Field(30.0, gt=0)
    # RFC 2177: re-issue IDLE before 29 minutes, or servers drop the connection.
    idle_renew_seconds: float = Field(600.0, gt=0, le=1740)
    connect_timeout_seconds: float = Field(30.0, gt=0)
    # Reconnect after a failure: doubling from min to max.
    reconnect_min_seconds: float = Field(1.0, gt=0)
    reconnect_max_seconds: float = Field(300.0, gt=0)
    # How many new messages are fetched per round trip.
    fetch_batch: int = Field(20, ge=1, le=1000)
    # What to do with a message once the broker has it: set a flag, move it, or nothing
    # (the checkpoint alone then says what was taken).
    after_publish: Literal["flag", "move", "none"] = "flag"
    processed_flag: str = "$SupportIngested"
    move_to: str = "Ingested"
    # Over this, the body is not fetched: the message travels with its headers and a note.
    max_message_bytes: int = Field(25 * 1024 * 1024, gt=0)
    # Over this, an attachment is not stored: it travels with its size and an error.
    max_attachment_bytes: int = Field(10 * 1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _backoff_order(self) -> "EmailConfig":
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError("reconnect_max_seconds must be >= reconnect_min_seconds")
        return self
