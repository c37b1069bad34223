"""Settings of the dedup stage (section ``dedup`` of pipeline.yaml)."""

from pydantic import BaseModel, Field


class DedupConfig(BaseModel):
    open_case_max_age_days: float = Field(30.0, gt=0)
    quiet_period_minutes: float = Field(30.0, ge=0)
    scorer: str = "token_set_ratio"
    threshold: float = Field(80.0, ge=0, le=100)
