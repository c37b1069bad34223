"""Settings of the route stage (section ``route`` of pipeline.yaml)."""

from pydantic import BaseModel, Field


class RouteConfig(BaseModel):
    # The routing rules support leads edit; reloaded when the file changes.
    rules_path: str = "config/routing.yaml"
    reload_interval_seconds: float = Field(2.0, gt=0)
    # A merged follow-up takes the routing of its case, which route remembers per account;
    # a case is forgotten this long after its last message (dedup closes a case after
    # open_case_max_age_days, 30, without activity, so nothing can follow it after that).
    remember_cases_days: float = Field(30.0, gt=0)
