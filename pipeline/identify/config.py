"""Settings of the identify stage (section ``identify`` of pipeline.yaml)."""

from pydantic import BaseModel


class IdentifyConfig(BaseModel):
    # Region used to read national phone numbers such as "06 12 34 56 78".
    default_region: str = "FR"
