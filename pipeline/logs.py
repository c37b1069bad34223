"""Logging: one event per line, ``key=value`` pairs after the logger name.

Message bodies and secrets never go to info level; log the message id instead.
"""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def faust_level(level: str) -> str:
    # faust/mode spell it "warn"; the standard library spells it "warning".
    return {"warning": "warn"}.get(level, level)


def setup_logging(level: str = "info") -> None:
    """Logging for commands that do not run a faust/mode worker (which sets up its own)."""
    name = {"warn": "WARNING"}.get(level, level.upper())
    logging.basicConfig(level=name, format=LOG_FORMAT, stream=sys.stderr, force=True)
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def logging_config(level: str) -> dict[str, object]:
    """dictConfig for faust/mode workers: our line format, quiet client libraries."""
    name = {"warn": "WARNING"}.get(level, level.upper())
    quiet = "WARNING" if name in ("DEBUG", "INFO") else name
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"format": LOG_FORMAT}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": name, "handlers": ["stderr"]},
        "loggers": {lib: {"level": quiet} for lib in ("aiokafka", "faust", "mode", "pipeline.faust_app")},
    }
