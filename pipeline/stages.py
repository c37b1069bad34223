"""The stages, the hops that chain them, and the module whose ``build(ctx)`` declares each.

A record crosses the broker only where its key changes or where the work needs other
machines (``shared/design/architecture.md``). Three hops:

- ``intake`` (``inbound.raw``, key: sender): ingest → identify → spamfilter. Text is judged
  in full and leaves on ``messages.accepted`` or ``messages.spam``; a message with audio is
  judged on what needs no content (unknown sender, auto-reply, email policy) and waits on
  ``transcribe.audio`` only if it passed.
- ``transcription`` (``transcribe.audio``, key: account): transcribe → spamfilter (the
  content checks on the transcript). Its own consumer group when run alone (GPU workers).
- ``cases`` (``messages.accepted``, key: account): dedup → route → ``cases.routed`` and
  ``queue.<name>``.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.topics import Topic

STAGES: dict[str, str] = {
    "ingest": "pipeline.ingest.agent",
    "identify": "pipeline.identify.agent",
    "spamfilter": "pipeline.spamfilter.agent",
    "transcribe": "pipeline.transcribe.agent",
    "dedup": "pipeline.dedup.agent",
    "route": "pipeline.route.agent",
}


@dataclass(frozen=True)
class HopSpec:
    """One consumer of one topic running several stages' steps, one after the other."""

    name: str
    source: Topic
    steps: tuple[str, ...]
    # The stages that choose this hop in ``--stages`` (spamfilter also ends transcription,
    # but naming it means the intake hop).
    chosen_by: tuple[str, ...]


HOPS: tuple[HopSpec, ...] = (
    HopSpec("intake", Topic.INBOUND_RAW, ("ingest", "identify", "spamfilter"),
            ("intake", "ingest", "identify", "spamfilter")),
    HopSpec("transcription", Topic.TRANSCRIBE_AUDIO, ("transcribe", "spamfilter"),
            ("transcription", "transcribe")),
    HopSpec("cases", Topic.ACCEPTED, ("dedup", "route"), ("cases", "dedup", "route")),
)

# What a step hands to the next one of its hop; written only when tapped (worker.taps).
TAPS: frozenset[str] = frozenset({Topic.NORMALIZED, Topic.IDENTIFIED, Topic.TRANSCRIBED,
                                  Topic.CASE_UPDATES})


def module_exists(name: str) -> bool:
    """Whether a module can be imported (its parent package may be missing too)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def installed_stages() -> list[str]:
    """Stages whose agent module exists, in flow order."""
    return [name for name, module in STAGES.items() if module_exists(module)]


def installed_hops() -> list[HopSpec]:
    stages = set(installed_stages())
    return [hop for hop in HOPS if set(hop.steps) <= stages]


def resolve_hops(requested: list[str] | None) -> list[HopSpec]:
    """The hops a worker runs: those the requested stages (or hop names) choose, else all."""
    if not requested:
        return installed_hops()
    known = {name for hop in HOPS for name in hop.chosen_by}
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise ConfigError(f"unknown stage(s) {', '.join(unknown)}; known: "
                          f"{', '.join(STAGES)} (or a hop: {', '.join(h.name for h in HOPS)})")
    chosen = [hop for hop in HOPS if set(hop.chosen_by) & set(requested)]
    missing = sorted({s for hop in chosen for s in hop.steps} - set(installed_stages()))
    if missing:
        raise ConfigError(f"stage(s) not installed: {', '.join(missing)}")
    return chosen


def describe_hops(hops: list[HopSpec]) -> str:
    return "; ".join(f"{h.name}: {h.source} → {' → '.join(h.steps)}" for h in hops)


def load_stage(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(STAGES[name])
