"""The IMAP poller: new mail in each configured mailbox → one envelope on ``inbound.raw``.

One watcher per folder, each with its own IMAP connection run in a thread (imapclient is
blocking; the event loop never waits on the network). For every new UID, in order:
parse → store attachments → publish (broker ack) → flag/move → checkpoint. A message that
cannot be parsed goes to ``pipeline.deadletter`` with its raw bytes in the blob store, and
the watcher moves past it. Failures of the server or the broker drop the connection and
reconnect with doubling backoff; nothing past the checkpoint is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import mode

from connectors.email.checkpoint import Checkpoint, checkpoint_key, read_checkpoints
from connectors.email.config import EmailConfig
from connectors.email.errors import MailboxError, MalformedEmail
from connectors.email.imap import FetchedMessage, Mailbox
from connectors.email.message import source_id_for, to_envelope
from connectors.email.mime import ParsedEmail, parse_email
from connectors.hub import ConnectorHub
from connectors.settings import ConnectorSettings
from pipeline.deadletter import DeadLetter
from pipeline.envelope import Attachment, Envelope
from pipeline.errors import BlobStoreError, BrokerError
from pipeline.kafka import ensure_topics
from pipeline.topics import Topic

log = logging.getLogger(__name__)

STAGE = "connector.email"


def install(hub: ConnectorHub) -> None:
    hub.add_service(EmailPoller(hub, hub.settings.email))


async def reconcile(settings: ConnectorSettings) -> int:
    """``pipeline connector email --reconcile``: one catch-up pass over every folder from its
    checkpoint (same order of work, same checkpoints), then exit; no IDLE, no waiting."""
    await ensure_topics(settings.kafka)
    hub = ConnectorHub(settings, [])
    await hub.producer.start()
    try:
        poller = EmailPoller(hub, settings.email)
        await poller.catch_up()
    finally:
        await hub.producer.stop()
    print(f"email: {poller.published} published, {poller.dead_lettered} dead-lettered "
          f"from {', '.join(settings.email.folders)}")
    return 0


class EmailPoller(mode.Service):
    """Watches every configured folder until stopped; finishes the message in hand first."""

    def __init__(self, hub: ConnectorHub, config: EmailConfig, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.hub = hub
        self.config = config
        self.checkpoints: dict[str, Checkpoint] = {}
        self.stopping = asyncio.Event()
        self._halt = threading.Event()  # tells a thread blocked in IDLE to return
        self._loaded = asyncio.Lock()
        self._checkpoints_read = False
        self._watchers: list[asyncio.Task[None]] = []
        self.published = 0
        self.dead_lettered = 0

    async def on_start(self) -> None:
        self.stopping = asyncio.Event()
        self._halt.clear()
        self._watchers = [asyncio.create_task(self._watch(folder), name=f"email:{folder}")
                          for folder in self.config.folders]
        log.info("event=email_started host=%s folders=%s after_publish=%s",
                 self.config.host, ",".join(self.config.folders), self.config.after_publish)

    async def on_stop(self) -> None:
        self.stopping.set()
        self._halt.set()
        if self._watchers:
            # Each watcher finishes the message in hand (publish, flag, checkpoint).
            _, pending = await asyncio.wait(self._watchers, timeout=30)
            for task in pending:
                task.cancel()
        log.info("event=email_stopped published=%d dead_lettered=%d", self.published,
                 self.dead_lettered)

    def key(self, folder: str) -> str:
        return checkpoint_key(self.config.username, self.config.host, folder)

    async def _load_checkpoints(self) -> None:
        async with self._loaded:
            if not self._checkpoints_read:
                self.checkpoints = await read_checkpoints(self.hub.settings.kafka)
                self._checkpoints_read = True

    async def catch_up(self) -> None:
        """Take what is new in every folder once, then return (errors propagate)."""
        await self._load_checkpoints()
        for folder in self.config.folders:
            mailbox = Mailbox(self.config, folder)
            try:
                uidvalidity = await asyncio.to_thread(mailbox.connect)
                await self._take_new(mailbox, uidvalidity)
            finally:
                await asyncio.to_thread(mailbox.close)

    async def _watch(self, folder: str) -> None:
        delay = self.config.reconnect_min_seconds
        while not self.stopping.is_set():
            mailbox = Mailbox(self.config, folder)
            try:
                await self._load_checkpoints()
                await self._session(mailbox)
                delay = self.config.reconnect_min_seconds
            except (MailboxError, BrokerError, BlobStoreError) as exc:
                log.warning("event=email_reconnect folder=%s in_seconds=%.1f error=%r",
                            folder, delay, str(exc))
                delay = await self._back_off(delay)
            except Exception:  # a bug must not end the watcher silently: log, back off
                log.exception("event=email_watcher_error folder=%s", folder)
                delay = await self._back_off(delay)
            finally:
                await asyncio.to_thread(mailbox.close)

    async def _back_off(self, delay: float) -> float:
        """Wait ``delay`` (or until stopped); return the next, doubled delay."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), delay)
        return min(delay * 2, self.config.reconnect_max_seconds)

    async def _session(self, mailbox: Mailbox) -> None:
        uidvalidity = await asyncio.to_thread(mailbox.connect)
        log.info("event=email_connected folder=%s uidvalidity=%s", mailbox.folder, uidvalidity)
        while not self.stopping.is_set():
            await self._take_new(mailbox, uidvalidity)
            if self.stopping.is_set():
                return
            how = await asyncio.to_thread(mailbox.wait_for_news, self._halt)
            log.debug("event=email_woke folder=%s how=%s", mailbox.folder, how)
            uidvalidity = await asyncio.to_thread(mailbox.select)

    async def _take_new(self, mailbox: Mailbox, uidvalidity: int) -> None:
        key = self.key(mailbox.folder)
        checkpoint = self.checkpoints.get(key)
        last_uid = 0
        if checkpoint is not None and checkpoint.uidvalidity == uidvalidity:
            last_uid = checkpoint.last_uid
        elif checkpoint is not None:
            # UIDs of the old numbering mean nothing now: re-scan the whole folder. Messages
            # keep their source id (Message-ID), so ingest drops those already passed on.
            log.warning("event=email_uidvalidity_changed folder=%s old=%s new=%s",
                        mailbox.folder, checkpoint.uidvalidity, uidvalidity)
            await self._save(key, Checkpoint(uidvalidity, 0))
        uids = await asyncio.to_thread(mailbox.new_uids, last_uid)
        for start in range(0, len(uids), self.config.fetch_batch):
            batch = uids[start:start + self.config.fetch_batch]
            for message in await asyncio.to_thread(mailbox.fetch, batch):
                if self.stopping.is_set():
                    return
                await self._take(mailbox, uidvalidity, message)

    async def _take(self, mailbox: Mailbox, uidvalidity: int, message: FetchedMessage) -> None:
        folder, uid = mailbox.folder, message.uid
        try:
            parsed = parse_email(message.raw, max_attachment_bytes=self.config.max_attachment_bytes,
                                 headers_only=message.headers_only)
            envelope = await self._envelope(parsed, message, folder, uidvalidity)
            envelope.to_bytes()  # a value that cannot be serialised is a dead letter, not a loop
        except BlobStoreError:
            raise
        except Exception as exc:  # MalformedEmail, or a parser bug: never stop the mailbox
            await self._dead_letter(folder, uidvalidity, message, exc)
        else:
            partition, offset = await self.hub.publisher.publish(envelope)
            self.published += 1
            log.info("event=email_published message_id=%s folder=%s uid=%s partition=%s "
                     "offset=%s", envelope.id, folder, uid, partition, offset)
        await asyncio.to_thread(mailbox.mark_processed, uid)
        await self._save(self.key(folder), Checkpoint(uidvalidity, uid))

    async def _envelope(self, parsed: ParsedEmail, message: FetchedMessage, folder: str,
                        uidvalidity: int) -> Envelope:
        attachments = []
        for item in parsed.attachments:
            attachment = Attachment(kind=Attachment.kind_for(item.content_type),
                                    content_type=item.content_type, size=item.size,
                                    filename=item.filename, error=item.error)
            if item.data is not None:
                blob = await self.hub.blobs.aput(item.data)
                attachment.uri, attachment.sha256 = blob.uri, blob.sha256
            attachments.append(attachment)
        envelope = to_envelope(parsed, source_id=source_id_for(parsed, message.raw),
                               received_at=self.hub.now(), attachments=attachments,
                               mailbox=folder, uid=message.uid, uidvalidity=uidvalidity)
        if message.headers_only:
            note = (f"message of {message.size} bytes over the {self.config.max_message_bytes}"
                    "-byte limit: body and attachments not fetched")
            envelope.notes.append(note)
            envelope.headers["x-email-oversize"] = str(message.size)
            log.warning("event=email_oversize message_id=%s folder=%s uid=%s size=%s",
                        envelope.id, folder, message.uid, message.size)
        return envelope

    async def _dead_letter(self, folder: str, uidvalidity: int, message: FetchedMessage,
                           error: Exception) -> None:
        blob = await self.hub.blobs.aput(message.raw)
        key = f"email:{self.config.username}@{self.config.host}/{folder}"
        record = DeadLetter.from_failure(
            stage=STAGE, error=error, failed_at=self.hub.now(),
            # RFC 5092 IMAP URL: names the exact message the raw bytes came from.
            source_topic=f"imap://{self.config.host}/{folder};UIDVALIDITY={uidvalidity}"
                         f"/;UID={message.uid}",
            value=None, key=key, raw_uri=blob.uri)
        await self.hub.publisher.dead_letter(record, key=key)
        self.dead_lettered += 1
        kind = "malformed" if isinstance(error, MalformedEmail) else "parser_error"
        log.warning("event=email_dead_letter folder=%s uid=%s uidvalidity=%s kind=%s "
                    "raw_uri=%s error=%r", folder, message.uid, uidvalidity, kind, blob.uri,
                    str(error))

    async def _save(self, key: str, checkpoint: Checkpoint) -> None:
        await self.hub.publisher.send(Topic.CONNECTOR_STATE, key,
                                      checkpoint.to_bytes(self.hub.now()))
        self.checkpoints[key] = checkpoint
