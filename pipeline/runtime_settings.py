"""The runtime's settings sections: the Kafka edge, the worker, the blob store, HTTP.

These are the sections the runtime layer (pipeline.kafka, faust_app, the stage runtime)
and the connectors read. They live below ``pipeline.settings``, the composition root that
assembles them with every stage's and connector's own section into ``Settings``: the Kafka
edge must not import the module that imports every stage. ``pipeline.settings`` keeps
re-exporting these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, Self

from pydantic import BaseModel, Field, SecretStr


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
    # Lower values cut latency (bench/chat_latency.py at 100 msg/s: 20 ms with
    # batch_within_seconds 0.005 and producer_linger_ms 1 gave p50 53 ms where these defaults
    # give 353 ms); the crash tests lost records with both (issue 13, docs/benchmarks.md),
    # so these stay until that is explained.
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


class BrokerSettings(Protocol):
    """Any settings object with a ``kafka`` section that copies itself, as ``Settings`` does.

    Lower layers type what they are handed with protocols like this one (``connectors``
    and the stages' commands extend it with their own sections), so they never import the
    composition root to name its ``Settings``.
    """

    @property
    def kafka(self) -> KafkaSettings: ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...


class RuntimeSettings(Protocol):
    """What the stage runtime reads: the Kafka edge, the worker, the blob store.

    The composed ``pipeline.settings.Settings`` is one; a stage reads its own section from
    it through ``StageContext.section``.
    """

    @property
    def kafka(self) -> KafkaSettings: ...

    @property
    def worker(self) -> WorkerSettings: ...

    @property
    def blobs(self) -> BlobSettings: ...

    @property
    def embedded_broker(self) -> bool: ...
