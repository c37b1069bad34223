"""Errors of the email connector (both are ``ConnectorError``; see pipeline/errors.py).

    ConnectorError
    ├── MalformedEmail      the bytes of one message cannot be read as an email (dead-lettered)
    └── MailboxError        the IMAP server cannot be reached or refused a command (reconnect)
"""

from pipeline.errors import ConnectorError


class MalformedEmail(ConnectorError):
    """One message's bytes cannot be read as an email; it goes to the dead-letter topic."""


class MailboxError(ConnectorError):
    """The IMAP server is unreachable or refused a command; the poller reconnects with backoff."""
