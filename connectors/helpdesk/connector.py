"""The helpdesk connector: ``install(hub)`` adds the outbound consumer and the webhooks.

Run by ``pipeline run`` when ``helpdesk.enabled`` and alone as ``pipeline connector
helpdesk``. Set-up per helpdesk and field mapping: docs/helpdesk.md.
"""

from __future__ import annotations

from connectors.helpdesk.inbound import install_webhooks
from connectors.helpdesk.outbound import HelpdeskOutbound
from connectors.helpdesk.zammad import Zammad
from connectors.hub import ConnectorHub


def install(hub: ConnectorHub) -> None:
    outbound = HelpdeskOutbound(hub.settings, hub.publisher, hub.blobs, hub.now)
    hub.add_service(outbound)
    zammad = outbound.helpdesks.get("zammad")
    install_webhooks(hub, hub.settings.helpdesk,
                     zammad if isinstance(zammad, Zammad) else None)
