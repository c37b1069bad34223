"""Operator sub-commands: ``status``, ``deadletter list|replay``, ``stats``."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pipeline.broker import with_broker
from pipeline.errors import ConfigError
from pipeline.kafka import consumer, read_records
from pipeline.ops import deadletters, stats, status
from pipeline.settings import Settings
from pipeline.topics import Topic, TopicNames

_POSITION = re.compile(r"^\d+:\d+$")


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("status", help="one screen: stages, lag, quarantine, queues, dead letters",
                       description=status.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--watch", type=float, nargs="?", const=5.0, metavar="SECONDS",
                   help="refresh every SECONDS (default 5) until Ctrl-C")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("deadletter", help="list or replay dead-letter records",
                       description=deadletters.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = dsub.add_parser("list", help="dead-letter records, oldest first, with replay state")
    q.add_argument("--stage", help="only this stage's records")
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.set_defaults(func=cmd_deadletter_list)
    q = dsub.add_parser("replay", help="re-inject records into the topic they came from, once")
    q.add_argument("--stage", help="records of this stage")
    q.add_argument("--id", dest="message_id", help="records of this message id")
    q.add_argument("--at", dest="position", metavar="PARTITION:OFFSET",
                   help="the record at this position of pipeline.deadletter (see list)")
    q.add_argument("--all", dest="everything", action="store_true", help="every record")
    q.add_argument("--value-file", type=Path, metavar="FILE",
                   help="replay this corrected value instead of the original (one record)")
    q.add_argument("--dry-run", action="store_true", help="show what would be replayed")
    q.set_defaults(func=cmd_deadletter_replay)

    p = sub.add_parser("stats", help="cases by category, module, country, channel",
                       description=stats.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--since", default="7d", help="period: 30m, 12h, 7d, 2w (default 7d)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_broker(settings)
    if args.watch is None:
        print(status.render(asyncio.run(status.collect(settings, datetime.now(UTC)))))
        return 0
    if args.watch <= 0:
        raise ConfigError("--watch SECONDS must be positive")
    while True:
        screen = status.render(asyncio.run(status.collect(settings, datetime.now(UTC))))
        sys.stdout.write("\x1b[H\x1b[2J" + screen + f"\n\nrefreshing every {args.watch:g} s "
                         "(Ctrl-C to stop)\n")
        sys.stdout.flush()
        time.sleep(args.watch)


def cmd_deadletter_list(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_broker(settings)
    letters, ledger = asyncio.run(deadletters.load(settings))
    shown = [d for d in letters if not args.stage or (d.record and d.record.stage == args.stage)]
    for letter in shown:
        replayed = ledger.get(letter.position)
        print(deadletters.as_json(letter, replayed) if args.json
              else deadletters.describe(letter, replayed))
    if not args.json:
        done = sum(1 for d in shown if d.position in ledger)
        print(f"{len(shown)} dead-letter record(s), {done} replayed")
    return 0


def cmd_deadletter_replay(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_broker(settings)
    if args.position and not _POSITION.match(args.position):
        raise ConfigError(f"--at {args.position!r}: expected PARTITION:OFFSET, e.g. 0:12")
    corrected = None
    if args.value_file is not None:
        try:
            corrected = args.value_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"--value-file {args.value_file}: {exc.strerror}") from exc
    selection = deadletters.Selection(args.stage, args.message_id, args.position,
                                      args.everything)
    letters, ledger = asyncio.run(deadletters.load(settings))
    todo, skipped = deadletters.plan_replay(letters, ledger, selection)
    for letter in skipped:
        print(f"skip {letter.position}: already replayed → "
              f"{ledger[letter.position].topic}@{ledger[letter.position].partition}:"
              f"{ledger[letter.position].offset}")
    if args.dry_run:
        for letter in todo:
            print("would replay " + deadletters.describe(letter, None))
        return 0
    done = asyncio.run(deadletters.replay(settings, todo, datetime.now(UTC), corrected))
    for letter, entry in done:
        print(f"replayed {letter.position} ({entry.stage}) → {entry.topic}@{entry.partition}:"
              f"{entry.offset}" + (" with corrected value" if entry.corrected else ""))
    print(f"{len(done)} replayed, {len(skipped)} already replayed before")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_broker(settings)
    until = datetime.now(UTC)
    since = until - stats.parse_period(args.since)
    names = TopicNames(settings.kafka.topic_prefix)

    async def read() -> list[bytes | None]:
        async with consumer(settings.kafka) as client:
            records = await read_records(client, names(Topic.ROUTED),
                                         since_ms=int(since.timestamp() * 1000))
        return [r.value for r in records]

    result = stats.case_stats(asyncio.run(read()), since, until)
    print(stats.as_json(result) if args.json else stats.render(result))
    return 0
