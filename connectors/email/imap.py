"""One IMAP mailbox over imapclient. Blocking: the poller calls every method in a thread.

imapclient's and the socket's errors become ``MailboxError`` here, so the poller handles
one kind of failure: reconnect with backoff.
"""

from __future__ import annotations

import imaplib
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from connectors.email.config import EmailConfig
from connectors.email.errors import MailboxError


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    size: int
    raw: bytes
    # True when only the header was fetched because the message is over the size limit.
    headers_only: bool


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (IMAPClientError, imaplib.IMAP4.error, OSError, EOFError) as exc:
        raise MailboxError(f"{what}: {exc!r}") from exc


class Mailbox:
    """A logged-in connection with one folder selected."""

    def __init__(self, config: EmailConfig, folder: str) -> None:
        self.config = config
        self.folder = folder
        self._client: IMAPClient | None = None

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise MailboxError(f"{self.folder}: not connected")
        return self._client

    def connect(self) -> int:
        """Connect, log in, select the folder; return its UIDVALIDITY."""
        c = self.config
        with _translated(f"connect to {c.host}:{c.port}"):
            context = ssl.create_default_context(cafile=c.tls_ca_file)
            client = IMAPClient(c.host, c.port, ssl=c.security == "tls",
                                ssl_context=context if c.security == "tls" else None,
                                timeout=c.connect_timeout_seconds)
            self._client = client
            if c.security == "starttls":
                client.starttls(context)
            client.login(c.username, c.password.get_secret_value())
            if c.after_publish == "move" and not client.folder_exists(c.move_to):
                client.create_folder(c.move_to)
        return self.select()

    def select(self) -> int:
        with _translated(f"select {self.folder}"):
            info = self.client.select_folder(self.folder)
        return int(info[b"UIDVALIDITY"])

    def new_uids(self, after_uid: int) -> list[int]:
        """UIDs above ``after_uid`` not yet marked processed, ascending."""
        criteria: list[object] = ["UID", f"{after_uid + 1}:*"]
        if self.config.after_publish == "flag":
            criteria += ["UNKEYWORD", self.config.processed_flag]
        with _translated(f"search {self.folder}"):
            found = self.client.search(criteria)
        # "n:*" always matches the highest UID, even below n (RFC 3501 6.4.8).
        return sorted(uid for uid in found if uid > after_uid)

    def fetch(self, uids: list[int]) -> list[FetchedMessage]:
        """Whole messages, or only their header when over ``max_message_bytes``."""
        limit = self.config.max_message_bytes
        with _translated(f"fetch from {self.folder}"):
            sizes = self.client.fetch(uids, ["RFC822.SIZE"])
            small = [u for u in uids if u in sizes and sizes[u][b"RFC822.SIZE"] <= limit]
            large = [u for u in uids if u in sizes and u not in small]
            bodies = self.client.fetch(small, ["BODY.PEEK[]"]) if small else {}
            heads = self.client.fetch(large, ["BODY.PEEK[HEADER]"]) if large else {}
        out = []
        for uid in uids:  # a UID expunged meanwhile is simply absent
            if uid in bodies:
                out.append(FetchedMessage(uid, sizes[uid][b"RFC822.SIZE"],
                                          bodies[uid][b"BODY[]"], False))
            elif uid in heads:
                out.append(FetchedMessage(uid, sizes[uid][b"RFC822.SIZE"],
                                          heads[uid][b"BODY[HEADER]"], True))
        return out

    def mark_processed(self, uid: int) -> None:
        """Flag or move the message (only called once the broker has it)."""
        c = self.config
        with _translated(f"mark uid {uid} in {self.folder}"):
            if c.after_publish == "flag":
                self.client.add_flags([uid], [c.processed_flag], silent=True)
            elif c.after_publish == "move":
                if self.client.has_capability("MOVE"):
                    self.client.move([uid], c.move_to)
                else:
                    self.client.copy([uid], c.move_to)
                    self.client.delete_messages([uid], silent=True)
                    if self.client.has_capability("UIDPLUS"):
                        self.client.uid_expunge([uid])
                    else:
                        self.client.expunge()

    def wait_for_news(self, halt: threading.Event) -> str:
        """Block until the server announces a change, ``halt`` is set, or it is time to
        look again (IDLE renewal or the poll interval). Return how it waited."""
        c = self.config
        with _translated(f"wait on {self.folder}"):
            if c.use_idle and self.client.has_capability("IDLE"):
                self.client.idle()
                try:
                    deadline = time.monotonic() + c.idle_renew_seconds
                    while not halt.is_set() and time.monotonic() < deadline:
                        # Short checks so a stop request is honoured within a second.
                        if self.client.idle_check(timeout=1.0):
                            break
                finally:
                    self.client.idle_done()
                return "idle"
            halt.wait(c.poll_interval_seconds)
            self.client.noop()
            return "poll"

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except (IMAPClientError, imaplib.IMAP4.error, OSError, EOFError):
            with suppress(OSError):
                client.shutdown()

