"""Media from Twilio (WhatsApp media, call recordings) into the blob store.

Twilio serves media behind the account's credentials (HTTP basic auth) and usually
answers with a redirect to a short-lived storage URL; aiohttp follows it and drops the
credentials when the redirect leaves the origin. A failed download is retried with
exponential backoff; when it still fails (or the file is refused) the attachment is kept
in the envelope with ``error`` set, so the message travels anyway.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from dataclasses import dataclass

import aiohttp

from connectors.twilio.config import TwilioConfig
from pipeline.blobstore import BlobStore
from pipeline.envelope import Attachment
from pipeline.errors import BlobStoreError, ConnectorError

log = logging.getLogger(__name__)

# Worth another try: Twilio or its storage is busy, or the media is not published yet.
_RETRYABLE_STATUS = {404, 408, 409, 425, 429, 500, 502, 503, 504}


class MediaError(ConnectorError):
    """A media file could not be fetched or was refused (``retryable`` says whether to retry)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Media:
    data: bytes
    content_type: str


def allowed(content_type: str, patterns: list[str]) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatchcase(base, p.lower()) for p in patterns)


class MediaFetcher:
    """Downloads Twilio media with the account's credentials, within the configured limits."""

    def __init__(self, config: TwilioConfig, blobs: BlobStore, *, max_bytes: int | None = None,
                 allowed_types: list[str] | None = None) -> None:
        self.config = config
        self.blobs = blobs
        self.max_bytes = max_bytes or config.media_max_bytes
        self.allowed_types = allowed_types or config.media_allowed_types
        self._auth = aiohttp.BasicAuth(config.account_sid, config.auth_token.get_secret_value())

    async def fetch(self, session: aiohttp.ClientSession, url: str) -> Media:
        """One attempt; MediaError says why it failed and whether a retry may help."""
        limit = self.max_bytes
        timeout = aiohttp.ClientTimeout(total=self.config.media_timeout_seconds)
        try:
            async with session.get(url, auth=self._auth, allow_redirects=True,
                                   timeout=timeout) as resp:
                if resp.status != 200:
                    raise MediaError(f"HTTP {resp.status} from {resp.url.host}",
                                     retryable=resp.status in _RETRYABLE_STATUS)
                content_type = resp.headers.get("Content-Type", "application/octet-stream")
                content_type = content_type.split(";", 1)[0].strip()
                if not allowed(content_type, self.allowed_types):
                    raise MediaError(f"content type {content_type} not allowed", retryable=False)
                if resp.content_length is not None and resp.content_length > limit:
                    raise MediaError(f"size {resp.content_length} bytes over the limit of "
                                     f"{limit} bytes", retryable=False)
                # Read to the end (a single read returns what is buffered), stopping early
                # once over the limit: a lying or absent Content-Length cannot exhaust memory.
                data = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > limit:
                        raise MediaError(f"size over the limit of {limit} bytes",
                                         retryable=False)
                if resp.content_length is not None and len(data) != resp.content_length:
                    raise MediaError(f"truncated: {len(data)} of {resp.content_length} bytes",
                                     retryable=True)
                return Media(bytes(data), content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise MediaError(f"download failed: {exc!r}", retryable=True) from exc

    async def fetch_with_retries(self, session: aiohttp.ClientSession, url: str) -> Media:
        attempts = self.config.media_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self.fetch(session, url)
            except MediaError as exc:
                if not exc.retryable or attempt == attempts:
                    if attempt > 1:
                        raise MediaError(f"{exc} (after {attempt} attempts)",
                                         retryable=False) from exc
                    raise
                delay = self.config.media_backoff_seconds * 2 ** (attempt - 1)
                log.info("event=twilio_media_retry attempt=%d delay_s=%.2f error=%r", attempt,
                         delay, str(exc))
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def attachment(self, session: aiohttp.ClientSession, url: str, declared_type: str,
                         *, message_id: str, filename: str | None = None) -> Attachment:
        """Fetch, store and describe one media file; on failure an Attachment with ``error``."""
        try:
            media = await self.fetch_with_retries(session, url)
            blob = await self.blobs.aput(media.data)
        except (MediaError, BlobStoreError) as exc:
            log.warning("event=twilio_media_not_kept message_id=%s error=%r", message_id,
                        str(exc))
            return Attachment(kind=Attachment.kind_for(declared_type),
                              content_type=declared_type or "application/octet-stream",
                              filename=filename, error=f"{exc} ({_redact(url)})")
        return Attachment(kind=Attachment.kind_for(media.content_type),
                          content_type=media.content_type, size=blob.size, uri=blob.uri,
                          sha256=blob.sha256, filename=filename)


def _redact(url: str) -> str:
    # Media URLs carry no secret (auth is a header) but keep only the path for the record.
    return url.split("?", 1)[0]
