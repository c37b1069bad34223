"""``pipeline``: run the pipeline, its parts, and the tools around it.

Settings come from ``--config`` (or ``PIPELINE_CONFIG``, or ./config/pipeline.yaml) and
``PIPELINE_*`` environment variables; they are read here, once, and passed down.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from pipeline.errors import PipelineError
from pipeline.logs import setup_logging
from pipeline.settings import Settings, config_path, load_settings
from pipeline.stages import module_exists

log = logging.getLogger("pipeline.cli")

# Modules adding their own sub-commands with ``add_commands(subparsers)``.
COMMAND_MODULES = (
    "pipeline.tools",
    "pipeline.identify.commands",
    "pipeline.spamfilter.commands",
    "pipeline.route.commands",
    "pipeline.ops.commands",
)

Command = Callable[[argparse.Namespace, Settings], int | None]

EPILOG = """\
examples:
  pipeline run                         everything on the embedded broker (try it, tests)
  pipeline send --channel chat --account acme --user u1 --text "Où configurer la TVA ?"
  pipeline tail cases.routed           watch a topic
  PIPELINE_KAFKA_BOOTSTRAP=kafka:9092 pipeline worker --stages transcribe
  PIPELINE_WORKER_TAPS='["messages.identified"]' pipeline run   also write a hop's inside

configuration: config/pipeline.yaml (or --config / PIPELINE_CONFIG), every key overridable
by PIPELINE_<SECTION>_<KEY>, e.g. PIPELINE_KAFKA_BOOTSTRAP, PIPELINE_CHAT_SECRET.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Omnichannel support-message ingestion pipeline: connectors → Kafka → "
                    "intake (ingest → identify → spamfilter), transcription (transcribe → "
                    "spamfilter), cases (dedup → route).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE", help="settings file (default: "
                        "$PIPELINE_CONFIG or ./config/pipeline.yaml)")
    parser.add_argument("--log-level", choices=["debug", "info", "warn", "error"],
                        help="override log.level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if module_exists(name):
            importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings(config_path(args.config))
        if args.log_level:
            settings = settings.model_copy(update={
                "log": settings.log.model_copy(update={"level": args.log_level})})
        setup_logging(settings.log.level)
        code = args.func(args, settings)
        return int(code or 0)
    except PipelineError as exc:
        print(f"pipeline: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
