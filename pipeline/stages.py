"""The stages in flow order, and the module whose ``register(ctx)`` wires each one."""

from __future__ import annotations

import importlib
import importlib.util

from pipeline.errors import ConfigError

STAGES: dict[str, str] = {
    "ingest": "pipeline.ingest.agent",
    "transcribe": "pipeline.transcribe.agent",
    "identify": "pipeline.identify.agent",
    "spamfilter": "pipeline.spamfilter.agent",
    "dedup": "pipeline.dedup.agent",
    "route": "pipeline.route.agent",
}


def module_exists(name: str) -> bool:
    """Whether a module can be imported (its parent package may be missing too)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def installed_stages() -> list[str]:
    """Stages whose agent module exists, in flow order."""
    return [name for name, module in STAGES.items() if module_exists(module)]


def resolve_stages(requested: list[str] | None) -> list[str]:
    """The stages a worker runs: the requested ones (validated) or all installed."""
    if not requested:
        return installed_stages()
    unknown = [name for name in requested if name not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGES)}")
    missing = [name for name in requested if name not in installed_stages()]
    if missing:
        raise ConfigError(f"stage(s) not installed: {', '.join(missing)}")
    return [name for name in STAGES if name in requested]


def load_stage(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(STAGES[name])
