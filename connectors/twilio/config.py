"""Settings of the Twilio connectors: WhatsApp and the voice line (sections ``twilio``)."""

from pydantic import BaseModel, Field, SecretStr


class TwilioConfig(BaseModel):
    enabled: bool = False
    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    # The public URL Twilio calls (as configured in the console): signatures are computed on
    # it, so behind a reverse proxy it differs from the address this server listens on.
    public_base_url: str | None = None
    # Twilio's REST API; tests point it at a local server speaking the same contract.
    api_base_url: str = "https://api.twilio.com"
    media_max_bytes: int = Field(16 * 1024 * 1024, gt=0)
