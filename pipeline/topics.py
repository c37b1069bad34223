"""The topic catalogue: every topic the pipeline reads or writes, in one place.

Topics are the monitoring interface and a contract with operations; names change only
deliberately, with a migration note. A configurable prefix may precede every name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DAY_MS = 24 * 3600 * 1000


class Topic(StrEnum):
    """Logical topic names (without the prefix).

    ``messages.normalized``, ``messages.identified``, ``messages.transcribed`` and
    ``cases.updates`` are taps: what one step hands the next inside a hop, written only when
    ``worker.taps`` names them (debugging). The others are the hops' inputs and outputs.
    """

    INBOUND_RAW = "inbound.raw"
    NORMALIZED = "messages.normalized"
    TRANSCRIBED = "messages.transcribed"
    # The transcription hop's input: identified messages with audio wait here for a
    # transcriber (its own workers), so text never queues behind a long recording.
    TRANSCRIBE_AUDIO = "transcribe.audio"
    IDENTIFIED = "messages.identified"
    SPAM = "messages.spam"
    ACCEPTED = "messages.accepted"
    CASE_UPDATES = "cases.updates"
    ROUTED = "cases.routed"
    CASE_EVENTS = "cases.events"
    DIRECTORY = "directory.employees"
    METRICS = "pipeline.metrics"
    DEADLETTER = "pipeline.deadletter"
    CONNECTOR_STATE = "connectors.state"


QUEUE_TOPIC_PREFIX = "queue."


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is keyed and kept."""

    name: str
    key: str
    description: str
    compacted: bool = False
    # None: the catalogue's default retention (180 days unless configured).
    retention_ms: int | None = None
    # None: the catalogue's default partition count.
    partitions: int | None = None


CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(Topic.INBOUND_RAW, "channel:sender", "what a connector received, as an envelope"),
    TopicSpec(Topic.NORMALIZED, "channel:sender",
              "tap: validated, normalised, source retries dropped"),
    TopicSpec(Topic.IDENTIFIED, "account id (or sender)",
              "tap: identity attached, or identified=false"),
    TopicSpec(Topic.TRANSCRIBE_AUDIO, "account id",
              "identified messages with audio, for the transcription workers"),
    TopicSpec(Topic.TRANSCRIBED, "account id", "tap: audio attachments carry a transcript"),
    TopicSpec(Topic.SPAM, "account id (or sender)", "quarantined, with reason and rule"),
    TopicSpec(Topic.ACCEPTED, "account id", "passed the spam filter"),
    TopicSpec(Topic.CASE_UPDATES, "account id", "tap: case opened, merged into, deprioritised"),
    TopicSpec(Topic.ROUTED, "account id", "case with queue, priority, SLA due time, rule"),
    TopicSpec(Topic.CASE_EVENTS, "case id", "from the helpdesk: closed, reopened, merged"),
    TopicSpec(Topic.DIRECTORY, "employee id", "registered employees (tombstone deletes)", True),
    TopicSpec(Topic.METRICS, "stage", "periodic counters per stage", retention_ms=30 * DAY_MS),
    TopicSpec(Topic.DEADLETTER, "original key", "what a stage could not process, replayable"),
    TopicSpec(Topic.CONNECTOR_STATE, "connector:mailbox", "connector checkpoints", True, None, 1),
)


def spec(topic: Topic | str) -> TopicSpec:
    """The catalogue entry of a logical topic; ``queue.<name>`` topics share one shape."""
    for entry in CATALOGUE:
        if entry.name == topic:
            return entry
    if str(topic).startswith(QUEUE_TOPIC_PREFIX):
        return TopicSpec(str(topic), "account id", "an agent queue's cases")
    raise KeyError(f"unknown topic {topic!r}")


@dataclass(frozen=True)
class TopicNames:
    """Physical names: the logical names with the configured prefix."""

    prefix: str = ""

    def __call__(self, topic: Topic | str) -> str:
        return f"{self.prefix}{topic}"

    def queue(self, queue: str) -> str:
        return self(f"{QUEUE_TOPIC_PREFIX}{queue}")

    def logical(self, physical: str) -> str:
        return physical[len(self.prefix):] if physical.startswith(self.prefix) else physical
