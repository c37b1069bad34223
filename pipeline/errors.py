"""Exceptions of the pipeline.

    PipelineError                    root: everything the pipeline raises on purpose
    ├── TransientError               a dependency is briefly away: a stage retries with backoff,
    │                                paused, instead of dead-lettering (mixed into the ones below)
    ├── ConfigError                  a configuration file or variable is wrong (names file, key, line)
    ├── BrokerError (transient)      the Kafka broker cannot be reached or refused a request
    │   └── EmbeddedBrokerError      the embedded broker binary would not start
    ├── BlobStoreError               the blob store could not keep or return a file
    │   ├── BlobNotFound             the store answers, but holds no such blob (poison)
    │   └── BlobStoreUnavailable (transient)  the store itself cannot be reached
    ├── DirectoryUnavailable (transient)  the employee directory is not loaded (yet)
    ├── EnvelopeError                a record is not a valid envelope
    │   └── UnsupportedEnvelopeVersion   written by a newer major version than this code reads
    ├── StageError                   a stage could not process a message (goes to dead-letter)
    └── ConnectorError               a connector could not accept input
        ├── SignatureError           a request's signature does not verify
        ├── PayloadTooLarge          a request's body is over the size limit
        └── InvalidPayload           a request's body is not what the contract says

Other libraries' errors (aiokafka, imapclient, twilio, fsspec) are translated at the edge
with ``raise ... from exc`` so stages never see them.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""


class TransientError(PipelineError):
    """A dependency (broker, blob store, directory, model) is briefly away: retry, don't
    dead-letter. Mixed into the concrete errors, so ``except BlobStoreError`` still works."""


class ConfigError(PipelineError):
    """A configuration file or environment variable is invalid."""


class BrokerError(TransientError):
    """The Kafka broker could not be reached or refused a request."""


class EmbeddedBrokerError(BrokerError):
    """The embedded broker binary could not be found or would not start."""


class BlobStoreError(PipelineError):
    """The blob store could not keep or return a file."""


class BlobNotFound(BlobStoreError):
    """The blob store answered, and holds no blob at that URI."""


class BlobStoreUnavailable(BlobStoreError, TransientError):
    """The blob store cannot be reached or refused the operation (retry later)."""


class DirectoryUnavailable(TransientError):
    """The employee directory is not loaded yet, or its topic cannot be read."""


class EnvelopeError(PipelineError):
    """A record could not be read as an envelope."""


class UnsupportedEnvelopeVersion(EnvelopeError):
    """An envelope of a newer major ``schema_version`` than this code reads."""

    def __init__(self, seen: int, supported: int) -> None:
        super().__init__(
            f"envelope schema_version {seen} is newer than the version this worker reads "
            f"({supported}); upgrade this worker, then replay the dead letter")
        self.seen = seen
        self.supported = supported


class StageError(PipelineError):
    """A stage could not process a message; carries where it happened."""

    def __init__(
        self,
        message: str,
        *,
        stage: str,
        message_id: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.message_id = message_id
        self.topic = topic
        self.partition = partition
        self.offset = offset


class ConnectorError(PipelineError):
    """A connector could not accept a piece of input."""


class SignatureError(ConnectorError):
    """A request's signature does not match its body."""


class PayloadTooLarge(ConnectorError):
    """A request's body is over the configured size limit."""


class InvalidPayload(ConnectorError):
    """A request's body does not follow the connector's contract."""
