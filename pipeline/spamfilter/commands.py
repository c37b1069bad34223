"""``pipeline spam release ID`` (and ``pipeline spam list``): the quarantine, reviewed by people."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Protocol

from pipeline.broker import with_broker
from pipeline.envelope import Envelope
from pipeline.errors import ConfigError
from pipeline.kafka import AckedProducer, consumer, read_records
from pipeline.runtime_settings import BrokerSettings
from pipeline.spamfilter.config import SpamfilterConfig
from pipeline.spamfilter.policy import load_policy
from pipeline.topics import Topic, TopicNames


class QuarantineSettings(BrokerSettings, Protocol):
    """What these commands read of the pipeline's settings (``pipeline.settings.Settings``)."""

    @property
    def spamfilter(self) -> SpamfilterConfig: ...


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("spam", help="the spam quarantine: list, release, check the policy")
    ssub = p.add_subparsers(dest="spam_command", metavar="ACTION", required=True)

    rel = ssub.add_parser("release", help="send a quarantined message on to messages.accepted",
                          description="Find message ID (envelope id or source id) on "
                          "messages.spam and publish it to messages.accepted, marked released.")
    rel.add_argument("id")
    rel.set_defaults(func=cmd_release)

    ls = ssub.add_parser("list", help="quarantined messages with their reason")
    ls.add_argument("--reason", help="only this reason code")
    ls.set_defaults(func=cmd_list)

    chk = ssub.add_parser("check-policy", help="validate the spam policy file")
    chk.set_defaults(func=cmd_check_policy)


async def quarantined(settings: BrokerSettings) -> list[tuple[str | None, Envelope]]:
    """Every record on messages.spam, oldest first per partition (key, envelope)."""
    topic = TopicNames(settings.kafka.topic_prefix)(Topic.SPAM)
    async with consumer(settings.kafka) as client:
        records = await read_records(client, topic)
    return [(r.key.decode() if r.key else None, Envelope.from_bytes(r.value))
            for r in records if r.value is not None]


async def release(settings: BrokerSettings, message_id: str, now: datetime) -> Envelope:
    matches = [(k, e) for k, e in await quarantined(settings)
               if message_id in (e.id, e.source_id)]
    if not matches:
        raise ConfigError(f"no quarantined message with id {message_id!r} on messages.spam")
    key, env = matches[-1]
    assert env.spam is not None
    env.spam.quarantined = False
    env.spam.released = True
    env.spam.released_at = now
    async with AckedProducer(settings.kafka) as producer:
        await producer.send(Topic.ACCEPTED, key or env.sender_key, env.to_bytes())
    return env


def cmd_release(args: argparse.Namespace, settings: QuarantineSettings) -> int:
    env = asyncio.run(release(with_broker(settings), args.id, datetime.now(UTC)))
    assert env.spam is not None
    print(json.dumps({"id": env.id, "released": True, "reason": env.spam.reason,
                      "rule": env.spam.rule, "topic": "messages.accepted"}, ensure_ascii=False))
    return 0


def cmd_list(args: argparse.Namespace, settings: QuarantineSettings) -> int:
    for _key, env in asyncio.run(quarantined(with_broker(settings))):
        if env.spam is None or (args.reason and env.spam.reason != args.reason):
            continue
        print(json.dumps({"id": env.id, "channel": env.channel.value,
                          "received_at": env.received_at.isoformat(),
                          "reason": env.spam.reason, "rule": env.spam.rule,
                          "explanation": env.spam.explanation}, ensure_ascii=False))
    return 0


def cmd_check_policy(args: argparse.Namespace, settings: QuarantineSettings) -> int:
    load_policy(settings.spamfilter.policy_path)
    print(f"{settings.spamfilter.policy_path}: ok")
    return 0
