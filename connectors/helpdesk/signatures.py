"""Webhook signatures: Zammad's HMAC-SHA1 of the body; Chatwoot's and ours, timestamped.

* Zammad: ``X-Hub-Signature: sha1=<hex HMAC-SHA1(token, body)>`` (the trigger webhook's
  "HMAC SHA1 signature token");
* Chatwoot: ``X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "<ts>.<body>")>`` with
  ``X-Chatwoot-Timestamp: <ts>`` (the webhook's secret);
* the generic webhook: the same scheme with ``X-Pipeline-Signature`` and
  ``X-Pipeline-Timestamp``, for what we send and what the tool sends back.
A timestamped signature older (or newer) than ``TOLERANCE_SECONDS`` is refused: a captured
request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

from pipeline.errors import SignatureError

ZAMMAD_SIGNATURE_HEADER = "X-Hub-Signature"
CHATWOOT_SIGNATURE_HEADER = "X-Chatwoot-Signature"
CHATWOOT_TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
WEBHOOK_SIGNATURE_HEADER = "X-Pipeline-Signature"
TIMESTAMP_HEADER = "X-Pipeline-Timestamp"
TOLERANCE_SECONDS = 300.0


def sign_zammad(body: bytes, token: str) -> str:
    return "sha1=" + hmac.new(token.encode(), body, hashlib.sha1).hexdigest()


def sign_timestamped(body: bytes, timestamp: str, secret: str) -> str:
    message = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _require_secret(secret: str, what: str) -> None:
    if not secret:
        raise SignatureError(f"{what} is not configured: every call is refused")


def verify_zammad(body: bytes, header: str | None, token: str) -> None:
    """SignatureError unless ``header`` is Zammad's signature of ``body``."""
    _require_secret(token, "helpdesk.zammad.webhook_secret")
    if not header:
        raise SignatureError(f"missing {ZAMMAD_SIGNATURE_HEADER}")
    if not hmac.compare_digest(header.strip().encode(), sign_zammad(body, token).encode()):
        raise SignatureError(f"{ZAMMAD_SIGNATURE_HEADER} does not match the body")


def verify_timestamped(body: bytes, header: str | None, timestamp: str | None, secret: str,
                       now: float, *, names: tuple[str, str], setting: str) -> None:
    """SignatureError unless ``header`` signs ``timestamp.body`` and the time is recent."""
    _require_secret(secret, setting)
    signature_name, timestamp_name = names
    if not header:
        raise SignatureError(f"missing {signature_name}")
    if not timestamp:
        raise SignatureError(f"missing {timestamp_name}")
    try:
        sent = float(timestamp)
    except ValueError as exc:
        raise SignatureError(f"{timestamp_name} is not a Unix time") from exc
    if abs(now - sent) > TOLERANCE_SECONDS:
        raise SignatureError(f"{timestamp_name} is {now - sent:.0f} s away from now")
    expected = sign_timestamped(body, timestamp.strip(), secret)
    if not hmac.compare_digest(header.strip().encode(), expected.encode()):
        raise SignatureError(f"{signature_name} does not match the body")
