"""Settings of the identify stage (section ``identify`` of pipeline.yaml)."""

from pydantic import BaseModel, Field


class IdentifyConfig(BaseModel):
    # Region used to read national phone numbers such as "06 12 34 56 78".
    default_region: str = "FR"
    # Before identifying a message, apply every directory change produced before it
    # (read-your-writes); off saves one small broker request per batch.
    read_your_writes: bool = True
    # How long a message waits for the directory to load or catch up before dead-lettering.
    directory_timeout_seconds: float = Field(30.0, gt=0)
