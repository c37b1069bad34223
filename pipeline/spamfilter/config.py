"""Settings of the spam filter stage (section ``spamfilter`` of pipeline.yaml)."""

from pydantic import BaseModel


class SpamfilterConfig(BaseModel):
    # The quarantine policy support leads edit (per channel and tier).
    policy_path: str = "config/spam.yaml"
