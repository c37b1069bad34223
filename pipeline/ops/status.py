"""``pipeline status``: one screen for an operator, built from the topics alone.

- stages: the latest ``pipeline.metrics`` snapshot of each (stage, worker); throughput is
  the ``in`` counter's rise between a worker's last two snapshots (or since it started when
  there is one), summed over the workers that published recently;
- consumer lag: committed offset of each pipeline consumer group (``worker.app_id`` and
  its ``<app_id>-<stages>`` subsets) against each partition's end offset;
- quarantine by reason: counters named ``quarantined.<reason>``, summed over stages;
- queue depths: records held by each ``queue.<name>`` topic (end minus beginning offset);
- dead letters: records on ``pipeline.deadletter``, and how many were replayed;
- what each stage says about itself in ``StageMetrics.info`` (e.g. ``rules_version``,
  ``rules_reload``), printed under the stage table;
- directory size: live keys of the compacted ``directory.employees`` (tombstones delete);
- helpdesks: per helpdesk the cases waiting to be delivered (records of its queues past the
  helpdesk consumer group's committed offset, or all of them before its first commit),
  whether it is paused on an outage, and its last error (``helpdesk.<name>`` metrics).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from pipeline.kafka import PartitionSpan, TopicPartition, admin, consumer, read_records, spans
from pipeline.metrics import StageSnapshot
from pipeline.ops.deadletters import REPLAY_LEDGER
from pipeline.settings import Settings
from pipeline.stages import STAGES
from pipeline.topics import CATALOGUE, QUEUE_TOPIC_PREFIX, Topic, TopicNames

QUARANTINE_PREFIX = "quarantined."
# Snapshots read per partition of pipeline.metrics: enough for two per worker and stage.
SNAPSHOTS_PER_PARTITION = 400


@dataclass
class StageRow:
    stage: str
    workers: int = 0
    stale_workers: int = 0
    processed: int = 0
    per_second: float | None = None
    deadlettered: int = 0
    p99_ms: float | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_seen: datetime | None = None
    # What a stage reports about itself in ``StageMetrics.info`` (rules version, last
    # reload result...), from its most recent snapshot.
    info: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class LagRow:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


@dataclass
class HelpdeskRow:
    name: str
    backlog: int = 0
    paused: bool = False
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass
class StatusReport:
    at: datetime
    stages: list[StageRow] = field(default_factory=list)
    lag: list[LagRow] = field(default_factory=list)
    quarantine: dict[str, int] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    deadletters: int = 0
    replayed: int = 0
    directory_size: int | None = None
    helpdesks: list[HelpdeskRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def stage_rows(snapshots: Iterable[StageSnapshot], now: datetime,
               fresh_for: timedelta) -> list[StageRow]:
    """Per stage: the sum over workers of their latest snapshot; rates from fresh workers."""
    by_worker: dict[tuple[str, str], list[StageSnapshot]] = defaultdict(list)
    for snap in snapshots:
        by_worker[(snap.stage, snap.worker)].append(snap)
    rows: dict[str, StageRow] = {}
    for (stage, _worker), snaps in by_worker.items():
        snaps.sort(key=lambda s: s.at)
        latest = snaps[-1]
        row = rows.setdefault(stage, StageRow(stage))
        row.workers += 1
        row.processed += latest.counters.get("in", 0)
        row.deadlettered += latest.counters.get("deadletter", 0)
        if "p99" in latest.latency_ms:
            row.p99_ms = max(row.p99_ms or 0.0, latest.latency_ms["p99"])
        if latest.last_error_at and (row.last_error_at is None
                                     or latest.last_error_at > row.last_error_at):
            row.last_error, row.last_error_at = latest.last_error, latest.last_error_at
        if row.last_seen is None or latest.at >= row.last_seen:
            row.info = {**row.info, **latest.info}
        row.last_seen = max(filter(None, (row.last_seen, latest.at)))
        if now - latest.at > fresh_for:
            row.stale_workers += 1
            continue
        rate = throughput(snaps)
        if rate is not None:
            row.per_second = (row.per_second or 0.0) + rate
    return [rows[s] for s in _stage_order(rows)]


def throughput(snaps: list[StageSnapshot]) -> float | None:
    """Messages in per second from a worker's snapshots (sorted by time)."""
    latest = snaps[-1]
    previous = next((s for s in reversed(snaps[:-1]) if s.started_at == latest.started_at
                     and s.at < latest.at), None)
    if previous is not None:
        seconds = (latest.at - previous.at).total_seconds()
        return (latest.counters.get("in", 0) - previous.counters.get("in", 0)) / seconds
    seconds = (latest.at - latest.started_at).total_seconds()
    return latest.counters.get("in", 0) / seconds if seconds > 0 else None


def _stage_order(rows: dict[str, StageRow]) -> list[str]:
    known = [s for s in STAGES if s in rows]
    return known + sorted(s for s in rows if s not in STAGES)


def quarantine_by_reason(snapshots: Iterable[StageSnapshot]) -> dict[str, int]:
    """``quarantined.<reason>`` counters of each worker's latest snapshot, summed."""
    latest: dict[tuple[str, str], StageSnapshot] = {}
    for snap in snapshots:
        key = (snap.stage, snap.worker)
        if key not in latest or snap.at > latest[key].at:
            latest[key] = snap
    reasons: dict[str, int] = defaultdict(int)
    for snap in latest.values():
        for name, value in snap.counters.items():
            if name.startswith(QUARANTINE_PREFIX):
                reasons[name[len(QUARANTINE_PREFIX):]] += value
    return dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def helpdesk_rows(settings: Settings, queue_spans: Iterable[PartitionSpan],
                  committed: dict[tuple[str, int], int], stages: list[StageRow],
                  names: TopicNames) -> list[HelpdeskRow]:
    """Backlog per enabled helpdesk, from its queues' spans and the group's commits."""
    config = settings.helpdesk
    if not config.enabled:
        return []
    rows: dict[str, HelpdeskRow] = {n: HelpdeskRow(n) for n in config.enabled_helpdesks()}
    for span in queue_spans:
        target = config.helpdesk_for(names.logical(span.topic)[len(QUEUE_TOPIC_PREFIX):])
        if target not in rows:
            continue
        done = committed.get((span.topic, span.partition), span.begin)
        rows[target].backlog += max(0, span.end - max(done, span.begin))
    for stage in stages:
        row = rows.get(stage.stage.removeprefix("helpdesk."))
        if row is not None and stage.stage.startswith("helpdesk."):
            row.paused = bool(stage.info.get("paused"))
            row.last_error, row.last_error_at = stage.last_error, stage.last_error_at
    return list(rows.values())


def live_keys(records: Iterable[tuple[bytes | None, bytes | None]]) -> int:
    """Keys whose last value is not a tombstone (what a compacted topic means)."""
    alive: dict[bytes | None, bool] = {}
    for key, value in records:
        alive[key] = value is not None
    return sum(alive.values())


async def collect(settings: Settings, now: datetime) -> StatusReport:
    """Read everything the status screen shows; missing topics and groups show as empty."""
    names = TopicNames(settings.kafka.topic_prefix)
    report = StatusReport(at=now)
    async with admin(settings.kafka) as adm:
        topics = [t for t in await adm.list_topics() if t.startswith(settings.kafka.topic_prefix)]
        groups = sorted(g[0] for g in await adm.list_consumer_groups()
                        if g[0] == settings.worker.app_id
                        or g[0].startswith(f"{settings.worker.app_id}-"))
        async with consumer(settings.kafka) as client:
            snapshots = []
            for record in await read_records(client, names(Topic.METRICS),
                                             last=SNAPSHOTS_PER_PARTITION):
                try:
                    snapshots.append(StageSnapshot.model_validate_json(record.value or b""))
                except ValidationError:
                    report.notes.append(f"unreadable metrics record at {record.partition}:"
                                        f"{record.offset}")
            fresh = timedelta(seconds=3 * settings.worker.metrics_interval_seconds + 5)
            report.stages = stage_rows(snapshots, now, fresh)
            report.quarantine = quarantine_by_reason(snapshots)

            pipeline_topics = [names(e.name) for e in CATALOGUE if names(e.name) in topics]
            queue_topics = sorted(t for t in topics
                                  if names.logical(t).startswith(QUEUE_TOPIC_PREFIX))
            held = await spans(client, pipeline_topics + queue_topics)
            report.queues = {names.logical(t)[len(QUEUE_TOPIC_PREFIX):]: _held(held, t)
                             for t in queue_topics}
            report.deadletters = _held(held, names(Topic.DEADLETTER))
            ledger = await read_records(client, names(REPLAY_LEDGER.name))
            report.replayed = live_keys((r.key, r.value) for r in ledger)
            if names(Topic.DIRECTORY) in topics:
                directory = await read_records(client, names(Topic.DIRECTORY))
                report.directory_size = live_keys((r.key, r.value) for r in directory)

            ends = {(s.topic, s.partition): s.end for s in held}
            tps = [TopicPartition(s.topic, s.partition) for s in held]
            # Always name the partitions: asking a group for "all its offsets" is a request
            # the embedded broker (Tansu) answers in a form aiokafka cannot parse.
            for group in groups if tps else []:
                committed = await adm.list_consumer_group_offsets(group, partitions=tps)
                for tp, meta in sorted(committed.items()):
                    if meta.offset >= 0:
                        # The embedded broker's ListOffsets can answer below what was read
                        # and committed: a committed offset is an end that certainly exists.
                        end = max(ends[(tp.topic, tp.partition)], meta.offset)
                        report.lag.append(LagRow(group, names.logical(tp.topic), tp.partition,
                                                 meta.offset, end))
            helpdesk_group = f"{settings.worker.app_id}-{settings.helpdesk.group_suffix}"
            done = {(names(r.topic), r.partition): r.committed for r in report.lag
                    if r.group == helpdesk_group}
            report.helpdesks = helpdesk_rows(settings, [s for s in held if s.topic in queue_topics],
                                             done, report.stages, names)
    if not groups:
        report.notes.append(f"no consumer group {settings.worker.app_id}[-…] has committed "
                            "yet (no worker running?)")
    return report


def _held(held: list[PartitionSpan], topic: str) -> int:
    return sum(s.size for s in held if s.topic == topic)


def render(report: StatusReport) -> str:
    """The status screen as text (80 columns)."""
    out = [f"pipeline status at {report.at:%Y-%m-%d %H:%M:%S %Z}", ""]
    out.append(f"{'STAGE':<11} {'WORKERS':>7} {'IN':>9} {'MSG/S':>8} {'P99 MS':>8} "
               f"{'DEAD':>6}  LAST ERROR")
    if not report.stages:
        out.append("  (no stage has published metrics yet)")
    for row in report.stages:
        workers = f"{row.workers - row.stale_workers}" + (
            f"+{row.stale_workers}s" if row.stale_workers else "")
        rate = f"{row.per_second:.1f}" if row.per_second is not None else "-"
        p99 = f"{row.p99_ms:.1f}" if row.p99_ms is not None else "-"
        error = "-"
        if row.last_error:
            error = f"{row.last_error_at:%H:%M:%S} {' '.join(row.last_error.split())}"[:60]
        out.append(f"{row.stage:<11} {workers:>7} {row.processed:>9} {rate:>8} {p99:>8} "
                   f"{row.deadlettered:>6}  {error}")
    for row in report.stages:
        if row.info:
            facts = "  ".join(f"{k}={v}" for k, v in sorted(row.info.items()))
            out.append(f"  {row.stage}: {facts}"[:120])
    out += ["", "CONSUMER LAG"]
    if not report.lag:
        out.append("  (no committed offsets)")
    for group in sorted({r.group for r in report.lag}):
        rows = [r for r in report.lag if r.group == group]
        out.append(f"  {group}: total {sum(r.lag for r in rows)}")
        for r in rows:
            out.append(f"    {r.topic:<28} p{r.partition:<3} committed {r.committed:>8}  "
                       f"end {r.end:>8}  lag {r.lag:>6}")
    out += ["", "QUARANTINE BY REASON"]
    out += [f"  {reason:<30} {n:>8}" for reason, n in report.quarantine.items()] or [
        "  (none)"]
    out += ["", "QUEUE DEPTHS (records held)"]
    out += [f"  {queue:<30} {n:>8}" for queue, n in report.queues.items()] or ["  (no queues)"]
    if report.helpdesks:
        out += ["", f"{'HELPDESK':<11} {'BACKLOG':>8}  {'STATE':<7} LAST ERROR"]
        for h in report.helpdesks:
            error = "-"
            if h.last_error and h.last_error_at:
                error = f"{h.last_error_at:%H:%M:%S} {' '.join(h.last_error.split())}"[:60]
            out.append(f"{h.name:<11} {h.backlog:>8}  {'paused' if h.paused else 'ok':<7} "
                       f"{error}")
    out += ["", f"DEAD LETTERS  {report.deadletters} held, {report.replayed} replayed",
            "DIRECTORY     " + (f"{report.directory_size} employees"
                                if report.directory_size is not None else "(no topic)")]
    out += [f"note: {n}" for n in report.notes]
    return "\n".join(out)
