"""The in-app chat webhook: signed JSON in, envelope on ``inbound.raw``, then 202."""

from __future__ import annotations

import logging

from aiohttp import web

from connectors.chat.contract import parse_message, to_envelope, verify_signature
from connectors.hub import ConnectorHub
from pipeline.envelope import Attachment
from pipeline.errors import BlobStoreError, BrokerError, InvalidPayload, SignatureError

log = logging.getLogger(__name__)


def install(hub: ConnectorHub) -> None:
    config = hub.settings.chat
    secret = config.secret.get_secret_value()

    async def receive(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > config.max_body_bytes:
            return _problem(413, f"body over {config.max_body_bytes} bytes")
        body = await request.content.read(config.max_body_bytes + 1)
        if len(body) > config.max_body_bytes:
            return _problem(413, f"body over {config.max_body_bytes} bytes")
        try:
            verify_signature(body, request.headers.get(config.signature_header), secret)
        except SignatureError as exc:
            log.warning("event=chat_rejected status=401 reason=%r remote=%s", str(exc),
                        request.remote)
            return _problem(401, str(exc))
        try:
            message = parse_message(body)
            envelope = to_envelope(message, hub.now())
            for item in message.attachments:
                data = item.decoded()
                if len(data) > config.max_attachment_bytes:
                    raise InvalidPayload(f"attachments: {item.filename}: over "
                                         f"{config.max_attachment_bytes} bytes")
                blob = await hub.blobs.aput(data)
                envelope.attachments.append(Attachment(
                    kind=Attachment.kind_for(item.content_type), content_type=item.content_type,
                    size=blob.size, uri=blob.uri, sha256=blob.sha256, filename=item.filename))
        except InvalidPayload as exc:
            log.info("event=chat_rejected status=422 reason=%r", str(exc))
            return _problem(422, str(exc))
        except BlobStoreError as exc:
            log.error("event=chat_blob_failed error=%r", str(exc))
            return _problem(503, "attachment storage unavailable, retry later")
        try:
            partition, offset = await hub.publisher.publish(envelope)
        except BrokerError as exc:
            log.error("event=chat_broker_unavailable message_id=%s error=%r", envelope.id, str(exc))
            return _problem(503, "broker unavailable, retry later", retry_after=5)
        log.info("event=chat_accepted message_id=%s partition=%s offset=%s", envelope.id,
                 partition, offset)
        return web.json_response({"id": envelope.id, "status": "accepted"}, status=202)

    hub.web.router.add_post(config.path, receive)


def _problem(status: int, detail: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return web.json_response({"error": detail}, status=status, headers=headers)
