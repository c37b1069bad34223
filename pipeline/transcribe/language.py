"""The customer's language, for the transcriber: from the envelope's identity or the directory.

Whisper base misdetects phone-band French (Thai, English); the account's language from the
directory is a better prior than any detection. Identification runs after transcription
today, so the stage follows ``directory.employees`` itself (a ``DirectoryReader``, as
identify does) and matches the sender with identify's own pure matching (``identify()``):
one rule for who a sender is, two readers of the same compacted topic. Once identification
runs first, ``envelope.identity`` carries the language and the reader is not consulted.

Never blocking: until the directory is loaded (or when the sender is unknown or ambiguous)
there is no account language and the configured list applies (``transcribe.languages``).
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.envelope import Envelope
from pipeline.errors import PipelineError
from pipeline.identify.core import identify
from pipeline.identify.reader import DirectoryReader
from pipeline.settings import Settings

log = logging.getLogger(__name__)


def identity_language(envelope: Envelope) -> str | None:
    """The account language an earlier identification put on the envelope, if any."""
    identity = envelope.identity
    if identity is not None and identity.identified and identity.language:
        return identity.language
    return None


class AccountLanguages:
    """Follows the employee directory; ``language_of`` answers without waiting."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reader = DirectoryReader(settings.kafka, settings.identify.default_region)
        self.loaded = False

    def language_of(self, envelope: Envelope) -> str | None:
        found = identity_language(envelope)
        if found or not self.loaded:
            return found
        identity = identify(envelope, self.reader.directory)
        return identity.language if identity.identified else None

    async def follow(self) -> None:
        """Start the reader (retrying while the topic is unreadable), then follow it."""
        worker = self.settings.worker
        delay = worker.retry_initial_seconds
        while True:
            try:
                await self.reader.start()
                break
            except PipelineError as exc:
                log.warning("event=directory_unavailable stage=transcribe retry_in_s=%.1f "
                            "error=%s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, worker.retry_max_seconds)
        following = asyncio.ensure_future(self.reader.run())
        try:
            # Loaded once what the topic held at start is applied; until then (and if that
            # takes long) recordings use the configured list rather than wait.
            while not self.loaded and not following.done():
                try:
                    await self.reader.catch_up(timeout=self.settings.identify
                                               .directory_timeout_seconds)
                    self.loaded = True
                    log.info("event=directory_following stage=transcribe employees=%d",
                             len(self.reader.directory))
                except TimeoutError:
                    log.warning("event=directory_slow stage=transcribe")
            await following
        finally:
            self.loaded = False
            following.cancel()
            await self.reader.stop()
