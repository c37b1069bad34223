"""The pipeline's settings: ``config/pipeline.yaml`` overridden by ``PIPELINE_*`` variables.

Every setting has an environment variable named ``PIPELINE_<SECTION>_<KEY>``, e.g.
``PIPELINE_KAFKA_BOOTSTRAP=kafka:9092`` or ``PIPELINE_CHAT_SECRET=...``. Precedence:
environment, then the YAML file, then the defaults below. Settings are read once, in the
entry point, and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from connectors.chat.config import ChatConfig
from connectors.email.config import EmailConfig
from connectors.helpdesk.config import HelpdeskConfig
from connectors.twilio.config import TwilioConfig
from pipeline.configfile import YamlDocument, load_yaml
from pipeline.dedup.config import DedupConfig
from pipeline.errors import ConfigError
from pipeline.identify.config import IdentifyConfig
from pipeline.ingest.config import IngestConfig
from pipeline.ops.config import MetricsConfig
from pipeline.route.config import RouteConfig
from pipeline.spamfilter.config import SpamfilterConfig
from pipeline.transcribe.config import TranscribeConfig

ENV_PREFIX = "PIPELINE_"
DEFAULT_CONFIG_PATH = Path("config/pipeline.yaml")


class KafkaSettings(BaseModel):
    # Empty: start the embedded in-memory broker (for trying the pipeline and for tests).
    bootstrap: str | None = None
    topic_prefix: str = ""
    partitions: int = Field(4, ge=1)
    replication_factor: int = Field(1, ge=1)
    retention_days: float = Field(180.0, gt=0)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # The embedded broker can hand a consumer offset N+1 before N is stored (see
    # pipeline/kafka/gapguard.py): consumers then hold at the gap, for at most
    # gap_patience_seconds. "auto": on for the embedded broker, off for a Kafka cluster.
    offset_gap_guard: Literal["auto", "on", "off"] = "auto"
    gap_patience_seconds: float = Field(5.0, gt=0, le=300)
    # Set by the pipeline itself when it points at an embedded broker (pipeline run, a
    # command finding a running `pipeline run`, the tests); not a knob for users.
    embedded: bool = False

    @property
    def gap_guard_enabled(self) -> bool:
        return self.offset_gap_guard == "on" or (
            self.offset_gap_guard == "auto" and self.embedded)


class WorkerSettings(BaseModel):
    app_id: str = "support-pipeline"
    # Stages (or hops: intake, transcription, cases) this worker runs; empty means all. A
    # stage brings its whole hop: "transcribe" runs transcription and its spam checks.
    stages: list[str] = Field(default_factory=list)
    # Intermediate results a hop hands from step to step without the broker; a tapped one
    # is also written to its topic, for debugging (off by default: each costs a write).
    taps: list[Literal["messages.normalized", "messages.identified", "messages.transcribed",
                       "cases.updates"]] = Field(default_factory=list)
    # faust's defaults (session 60 s, rebalance 60 s, heartbeat 3 s) made a worker take ~30 s
    # to join its group. The embedded broker answers the first JoinGroup after half the
    # session timeout (measured: 10 s → ready in 6.3 s, 6 s → 4.4 s); 6 s is also the least
    # a stock Kafka broker accepts (group.min.session.timeout.ms). Heartbeats run on faust's
    # consumer thread, so a busy event loop does not miss them.
    session_timeout_seconds: float = Field(6.0, gt=0)
    rebalance_timeout_seconds: float = Field(5.0, gt=0)
    heartbeat_interval_seconds: float = Field(1.0, gt=0)
    request_timeout_seconds: float = Field(30.0, gt=0)
    # memory:// replays the changelog on start; rocksdb:// keeps local state (production).
    table_store: str = "memory://"
    data_dir: str = "var/worker"
    # With a persistent store, faust refuses to start when the offset saved with the local
    # state is above the changelog's end (the topic was deleted or recreated under it): the
    # state would describe records that no longer exist. Keep it on against Kafka. The
    # embedded broker's ListOffsets answers an end below the records it serves, a false
    # alarm that stops every restart: tests on that broker turn it off.
    recovery_consistency_check: bool = True
    batch_size: int = Field(500, ge=1)
    # How long a consumer fetch waits for records (faust hard-codes 1500 ms; see faust_app.py).
    fetch_max_wait_ms: int = Field(100, ge=0, le=5000)
    batch_within_seconds: float = Field(0.05, gt=0)
    producer_linger_ms: int = Field(10, ge=0)
    producer_max_batch_bytes: int = Field(262_144, gt=0)
    metrics_interval_seconds: float = Field(10.0, gt=0)
    # uvloop cuts the event loop's own cost, a large part of a faust worker's time
    # (bench/pipeline_throughput.py); "asyncio" is the fallback where uvloop cannot run.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # faust commits offsets this often (its default 2.8 s). A rebalance or a crash replays
    # what was processed since the last commit, at every stage (at-least-once), so a
    # shorter interval means fewer repeated records; a commit is one small request.
    commit_interval_seconds: float = Field(1.0, gt=0)
    # A transient failure (broker, blob store, directory or model briefly away) pauses the
    # stage and retries the same message, backing off from the first delay to the longest,
    # for as long as it lasts: an outage never becomes a pile of dead letters.
    retry_initial_seconds: float = Field(0.5, gt=0)
    retry_max_seconds: float = Field(30.0, gt=0)


class BlobSettings(BaseModel):
    # A local directory, or an fsspec URL (s3://bucket/prefix, gs://...) shared by all workers.
    url: str = "var/blobs"


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class LogSettings(BaseModel):
    level: Literal["debug", "info", "warn", "error"] = "info"
    format: Literal["text", "json"] = "text"


class Settings(BaseSettings):
    """Everything a pipeline process needs to know, validated."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    blobs: BlobSettings = Field(default_factory=BlobSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    transcribe: TranscribeConfig = Field(default_factory=TranscribeConfig)
    identify: IdentifyConfig = Field(default_factory=IdentifyConfig)
    spamfilter: SpamfilterConfig = Field(default_factory=SpamfilterConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    route: RouteConfig = Field(default_factory=RouteConfig)

    chat: ChatConfig = Field(default_factory=ChatConfig)
    twilio: TwilioConfig = Field(default_factory=TwilioConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    helpdesk: HelpdeskConfig = Field(default_factory=HelpdeskConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file (passed as init values) so operations can
        # override one key of a shipped file.
        return (env_settings, init_settings)

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka.bootstrap


def config_path(explicit: str | Path | None = None, environ: dict[str, str] | None = None) -> Path | None:
    """The file to read: ``--config``, else ``PIPELINE_CONFIG``, else ./config/pipeline.yaml."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if env.get("PIPELINE_CONFIG"):
        return Path(env["PIPELINE_CONFIG"])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (if any) and the environment; raise ConfigError naming what is wrong."""
    doc: YamlDocument | None = None
    data: dict[str, Any] = {}
    if path is not None:
        doc = load_yaml(path)
        if doc.data is None:
            doc.data = {}
        if not isinstance(doc.data, dict):
            raise ConfigError(f"{path}:1: the top level must be a mapping of sections")
        data = dict(doc.data)
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, doc)) from exc


def _explain(exc: ValidationError, doc: YamlDocument | None) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        env_name = ENV_PREFIX + "_".join(str(p) for p in loc[:2]).upper()
        line = doc.line_of(loc) if doc is not None else None
        if env_name in os.environ:
            where = f"environment variable {env_name}"
        elif doc is not None and line:
            where = f"{doc.path}:{line}"
        else:
            where = doc.path if doc is not None else "settings"
        lines.append(f"{where} {key}: {err['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
