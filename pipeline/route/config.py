"""Settings of the route stage (section ``route`` of pipeline.yaml)."""

from pydantic import BaseModel, Field


class RouteConfig(BaseModel):
    # The routing rules support leads edit; reloaded when the file changes.
    rules_path: str = "config/routing.yaml"
    reload_interval_seconds: float = Field(2.0, gt=0)
