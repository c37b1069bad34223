"""``pipeline directory import FILE [--prune]`` and ``pipeline directory lookup ADDRESS``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Protocol

from pipeline.broker import with_broker
from pipeline.errors import ConfigError
from pipeline.identify.addresses import canonical
from pipeline.identify.config import IdentifyConfig
from pipeline.identify.directory import DirectoryEmployee
from pipeline.identify.importfile import read_directory_file
from pipeline.identify.reader import DirectoryReader
from pipeline.kafka import AckedProducer, ensure_topics
from pipeline.runtime_settings import BrokerSettings
from pipeline.topics import Topic


class DirectorySettings(BrokerSettings, Protocol):
    """What these commands read of the pipeline's settings (``pipeline.settings.Settings``)."""

    @property
    def identify(self) -> IdentifyConfig: ...


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("directory", help="the employee directory (who may write to support)")
    dsub = p.add_subparsers(dest="directory_command", metavar="ACTION", required=True)

    imp = dsub.add_parser("import", help="load employees from a CSV, YAML or JSON file",
                          description="Publish every valid employee of FILE to "
                          "directory.employees; bad rows are reported with their line and "
                          "skipped. With --prune, employees no longer in the file are deleted.")
    imp.add_argument("file")
    imp.add_argument("--prune", action="store_true",
                     help="delete (tombstone) employees that are not in the file")
    imp.add_argument("--dry-run", action="store_true", help="check the file, publish nothing")
    imp.set_defaults(func=cmd_import)

    look = dsub.add_parser("lookup", help="who does an e-mail address or phone number belong to")
    look.add_argument("address", help="e-mail, phone (any format) or whatsapp:+...")
    look.set_defaults(func=cmd_lookup)


def cmd_import(args: argparse.Namespace, settings: DirectorySettings) -> int:
    region = settings.identify.default_region
    result = read_directory_file(args.file, region)
    for problem in result.problems:
        print(f"{problem.location(args.file)}: skipped: {problem.message}", file=sys.stderr)
    if args.dry_run:
        print(f"{len(result.employees)} employee(s) valid, {len(result.problems)} row(s) skipped")
        return 1 if result.problems else 0
    settings = with_broker(settings)
    upserts, unchanged, deletes = asyncio.run(_publish(settings, result.employees, args.prune))
    print(f"{upserts} employee(s) published, {unchanged} unchanged, {deletes} deleted, "
          f"{len(result.problems)} row(s) skipped")
    return 1 if result.problems else 0


async def _publish(settings: DirectorySettings, employees: list[DirectoryEmployee],
                   prune: bool) -> tuple[int, int, int]:
    """Publish what changed (upserts), and with ``prune`` tombstones for the missing."""
    await ensure_topics(settings.kafka)
    current = (await _load(settings)).directory.employees
    # Only changes go to the topic: re-importing the same file every night costs nothing
    # downstream and keeps the compacted topic's history readable.
    changed = [e for e in employees if current.get(e.id) != e]
    gone = sorted(set(current) - {e.id for e in employees}) if prune else []
    async with AckedProducer(settings.kafka, linger_ms=5) as producer:
        for employee in changed:
            await producer.send(Topic.DIRECTORY, employee.id,
                                employee.model_dump_json(exclude_none=True).encode())
        for employee_id in gone:
            await producer.send(Topic.DIRECTORY, employee_id, None)
    return len(changed), len(employees) - len(changed), len(gone)


async def _load(settings: DirectorySettings) -> DirectoryReader:
    reader = DirectoryReader(settings.kafka, settings.identify.default_region)
    await reader.start()
    task = asyncio.create_task(reader.run())
    try:
        await reader.catch_up()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await reader.stop()
    return reader


def cmd_lookup(args: argparse.Namespace, settings: DirectorySettings) -> int:
    key = canonical(args.address, settings.identify.default_region)
    if key is None:
        raise ConfigError(f"{args.address!r} is neither an e-mail address nor a phone number")
    settings = with_broker(settings)
    reader = asyncio.run(_load(settings))
    owners = reader.directory.owners(key)
    accounts = sorted({o.account.id for o in owners})
    verdict = "unknown" if not owners else ("ambiguous" if len(accounts) > 1 else "identified")
    print(json.dumps({
        "address": key, "verdict": verdict,
        "employees": [{"employee_id": o.id, "name": o.name, "role": o.role,
                       "account_id": o.account.id, "account_name": o.account.name,
                       "tier": o.account.tier, "country": o.account.country,
                       "language": o.account.language} for o in owners],
    }, ensure_ascii=False, indent=2))
    return 0 if verdict == "identified" else 3
