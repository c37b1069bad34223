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

from pydantic import BaseModel, Field, ValidationError
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
from pipeline.runtime_settings import BlobSettings, HttpSettings, KafkaSettings, WorkerSettings
from pipeline.spamfilter.config import SpamfilterConfig
from pipeline.transcribe.config import TranscribeConfig

ENV_PREFIX = "PIPELINE_"
DEFAULT_CONFIG_PATH = Path("config/pipeline.yaml")


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
