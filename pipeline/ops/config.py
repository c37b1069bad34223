"""Settings of the Prometheus endpoint (section ``metrics`` of pipeline.yaml)."""

from pydantic import BaseModel, Field


class MetricsConfig(BaseModel):
    # Off by default: several workers on one host (tests, `pipeline run` beside a worker)
    # would fight over a fixed port. Production turns it on (PIPELINE_METRICS_ENABLED=true).
    enabled: bool = False
    host: str = "0.0.0.0"
    # 0 picks a free port; the worker logs the URL (event=metrics_endpoint).
    port: int = Field(9108, ge=0, le=65535)
    path: str = "/metrics"
