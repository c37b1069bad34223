"""What the connectors read of the pipeline's settings.

The composition root (``pipeline.settings.Settings``) assembles every section and hands the
object to the connectors; they name it by this protocol rather than import the module that
imports every stage. Each connector's own section lives beside it (``connectors/*/config.py``);
the shared ones come from the runtime (``pipeline.runtime_settings``).
"""

from __future__ import annotations

from typing import Protocol

from connectors.chat.config import ChatConfig
from connectors.email.config import EmailConfig
from connectors.helpdesk.config import HelpdeskConfig
from connectors.twilio.config import TwilioConfig
from pipeline.runtime_settings import BlobSettings, BrokerSettings, HttpSettings, WorkerSettings


class ConnectorSettings(BrokerSettings, Protocol):
    """The sections a connector may read: the runtime's and every connector's own."""

    @property
    def worker(self) -> WorkerSettings: ...

    @property
    def blobs(self) -> BlobSettings: ...

    @property
    def http(self) -> HttpSettings: ...

    @property
    def chat(self) -> ChatConfig: ...

    @property
    def twilio(self) -> TwilioConfig: ...

    @property
    def email(self) -> EmailConfig: ...

    @property
    def helpdesk(self) -> HelpdeskConfig: ...
