"""Core sub-commands: run, worker, connector, send, tail, topics, config."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from connectors.hub import CONNECTORS, InboundPublisher, enabled_connectors
from pipeline import runner
from pipeline.blobstore import BlobStore

# with_broker lives in the runtime (pipeline.broker); imported here for the commands below
# and for callers of its old home.
from pipeline.broker import with_broker
from pipeline.envelope import AppIdentity, Attachment, Channel, Envelope, Sender
from pipeline.errors import ConfigError
from pipeline.kafka import AckedProducer, ensure_topics, follow
from pipeline.settings import Settings
from pipeline.stages import HOPS
from pipeline.topics import CATALOGUE, TopicNames


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    stages_help = ("comma-separated stages or hops; a stage brings its whole hop: "
                   + "; ".join(f"{h.name} = {' → '.join(h.steps)}" for h in HOPS)
                   + " (default: all)")

    p = sub.add_parser("run", help="run everything: broker (if embedded), stages, connectors",
                       description="Start the embedded broker when kafka.bootstrap is empty, "
                       "create the topics, run every stage and the enabled connectors. "
                       "Ctrl-C or SIGTERM stops gracefully.")
    p.add_argument("--stages", type=_stage_list, help=stages_help)
    p.add_argument("--no-connectors", action="store_true", help="run the stages only")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("worker", help="run stages against a configured broker (production)")
    p.add_argument("--stages", type=_stage_list, help=stages_help)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("connector", help="run one connector alone (production)")
    p.add_argument("name", choices=list(CONNECTORS))
    p.add_argument("--reconcile", action="store_true",
                   help="catch up what the source holds but the pipeline missed, then exit")
    p.set_defaults(func=cmd_connector)

    p = sub.add_parser("send", help="inject a message by hand onto inbound.raw")
    p.add_argument("--channel", choices=[c.value for c in Channel], default="chat")
    p.add_argument("--text", required=True)
    p.add_argument("--subject")
    p.add_argument("--from", dest="sender", metavar="ADDRESS",
                   help="phone, e-mail or whatsapp:+... of the sender")
    p.add_argument("--account", help="account id (chat: the signed in-app identity)")
    p.add_argument("--user", default="manual", help="user id (chat)")
    p.add_argument("--attach", action="append", default=[], metavar="FILE",
                   help="attach a file (stored in the blob store); repeatable")
    p.add_argument("--id", dest="source_id", help="source message id (default: generated)")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("tail", help="print a topic's records readably")
    p.add_argument("topic", help="logical name, e.g. messages.normalized or queue.billing")
    p.add_argument("--from-beginning", action="store_true")
    p.add_argument("--limit", type=int, default=0, help="stop after N records")
    p.add_argument("--timeout", type=float, default=0,
                   help="stop after N seconds without a record (default: follow)")
    p.add_argument("--json", action="store_true", help="one raw JSON value per line")
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("topics", help="list the topic catalogue; --create creates them")
    p.add_argument("--create", action="store_true")
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("config", help="validate the settings and print them (secrets hidden)")
    p.set_defaults(func=cmd_config)


def _stage_list(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    runner.run_all(settings, chosen_stages(args, settings), with_connectors=not args.no_connectors)
    return 0


def chosen_stages(args: argparse.Namespace, settings: Settings) -> list[str] | None:
    """``--stages``, else ``worker.stages`` from the config file or environment, else all."""
    return args.stages or settings.worker.stages or None


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_broker(settings)
    runner.run_worker(settings, chosen_stages(args, settings), connectors=None)
    return 0


def cmd_connector(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_broker(settings)
    if args.reconcile:
        import importlib

        module = importlib.import_module(CONNECTORS[args.name])
        if not hasattr(module, "reconcile"):
            raise ConfigError(f"connector {args.name} has nothing to reconcile")
        return int(asyncio.run(module.reconcile(settings)) or 0)
    if args.name not in enabled_connectors(settings) and args.name != "chat":
        print(f"note: {args.name} is not enabled in the settings; running it anyway",
              file=sys.stderr)
    runner.run_connectors(settings, [args.name])
    return 0


def build_manual_envelope(args: argparse.Namespace, now: datetime) -> Envelope:
    channel = Channel(args.channel)
    source_id = args.source_id or f"manual-{now.strftime('%Y%m%dT%H%M%S.%f')}"
    sender = Sender()
    address = args.sender or ""
    if channel is Channel.CHAT:
        if not args.account:
            raise ConfigError("--account is required for --channel chat (signed in-app identity)")
        sender = Sender(email=address or None, app_identity=AppIdentity(
            user_id=args.user, account_id=args.account, email=address or None))
    elif "@" in address:
        sender = Sender(email=address)
    elif address.startswith("whatsapp:"):
        sender = Sender(phone=address.removeprefix("whatsapp:"), whatsapp_id=address)
    elif address:
        sender = Sender(phone=address)
    return Envelope(channel=channel, source_id=source_id, received_at=now, sender=sender,
                    text=args.text, subject=args.subject)


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_broker(settings)
    envelope = build_manual_envelope(args, datetime.now(UTC))
    blobs = BlobStore(settings.blobs.url)
    for name in args.attach:
        path = Path(name)
        content_type = _guess_type(path)
        blob = blobs.put(path.read_bytes())
        envelope.attachments.append(Attachment(
            kind=Attachment.kind_for(content_type), content_type=content_type, size=blob.size,
            uri=blob.uri, sha256=blob.sha256, filename=path.name))

    async def send() -> tuple[int, int]:
        async with AckedProducer(settings.kafka) as producer:
            return await InboundPublisher(producer).publish(envelope)

    partition, offset = asyncio.run(send())
    print(json.dumps({"id": envelope.id, "topic": "inbound.raw", "partition": partition,
                      "offset": offset}))
    return 0


def _guess_type(path: Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def cmd_tail(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_broker(settings)
    return asyncio.run(_tail(settings, args))


async def _tail(settings: Settings, args: argparse.Namespace) -> int:
    names = TopicNames(settings.kafka.topic_prefix)
    seen = 0
    async for record in follow(settings.kafka, [names(args.topic)],
                               from_beginning=args.from_beginning,
                               idle_timeout=args.timeout or None):
        print(format_record(record.key, record.value, record.partition, record.offset,
                            raw=args.json), flush=True)
        seen += 1
        if args.limit and seen >= args.limit:
            break
    return 0


def format_record(key: bytes | None, value: bytes | None, partition: int, offset: int,
                  *, raw: bool = False) -> str:
    """A record as a person reads it: position, key, and the JSON value indented."""
    text = value.decode("utf-8", "replace") if value is not None else None
    if raw:
        return text if text is not None else "null"
    head = f"── p{partition}@{offset} key={key.decode('utf-8', 'replace') if key else None}"
    if text is None:
        return f"{head}\n(tombstone)"
    try:
        body = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        body = text
    return f"{head}\n{body}"


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    names = TopicNames(settings.kafka.topic_prefix)
    if args.create:
        settings = with_broker(settings)
        created = asyncio.run(ensure_topics(settings.kafka))
        print(f"created {len(created)} topic(s)")
    for entry in CATALOGUE:
        kept = "compacted" if entry.compacted else (
            f"{(entry.retention_ms or settings.kafka.retention_days * 86_400_000) / 86_400_000:g} days")
        print(f"{names(entry.name):32} key={entry.key:24} {kept:12} {entry.description}")
    print(f"{names('queue.<name>'):32} key={'account id':24} "
          f"{settings.kafka.retention_days:g} days".ljust(80) + " one topic per agent queue")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return 0
