"""Read one email's bytes into what a support pipeline needs. Pure functions, no I/O.

Parsing uses the standard library's modern policy (``email.policy.default``). Nothing here
raises on odd input except ``MalformedEmail`` for bytes that are not an email at all:
unknown or wrongly declared charsets fall back to UTF-8, then Windows-1252, then Latin-1
(which decodes any byte), and each fallback is noted.
"""

from __future__ import annotations

import codecs
import email
import email.utils
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from typing import Any

import html2text

from connectors.email.errors import MalformedEmail

# Headers the spam filter reads to recognise auto-replies (RFC 3834 and common practice),
# kept on the envelope with lower-cased names.
AUTO_REPLY_HEADERS = ("auto-submitted", "x-autoreply", "x-autorespond", "precedence",
                      "return-path", "x-auto-response-suppress", "list-id")
# Single-byte charsets that decode any byte: a declared one hides UTF-8 sent by mistake.
_SINGLE_BYTE = {"ascii", "iso8859_1", "iso8859_15", "cp1252"}
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# The blank line that ends the header block (CRLF on the wire, LF in some stores).
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")


@dataclass
class ParsedAttachment:
    filename: str | None
    content_type: str
    size: int
    data: bytes | None  # None when over the size limit
    error: str | None = None


@dataclass
class ParsedEmail:
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str | None = None
    from_email: str | None = None
    from_name: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: datetime | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    # "plain", "html" (converted) or "none": where ``text`` came from.
    text_source: str = "none"
    attachments: list[ParsedAttachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # What makes two deliveries one message (see ``content_digest``).
    content_digest: str = ""


def content_digest(raw: bytes, *, headers_only: bool = False, msg: Message | None = None) -> str:
    """sha256 of what the sender wrote: From, Subject, Date and the body (MIME parts and
    attachments included), line endings normalised.

    Message-IDs are not unique in practice (broken mailers, list software, test corpora),
    so the Message-ID alone cannot tell a retry from another message. The trace headers a
    server adds on each delivery (Received, Delivered-To, Return-Path...) are left out, so
    a re-scan or a second delivery of one message gives the same digest. When only the
    header was fetched (over the size limit), that header block is all there is to digest.
    """
    if headers_only:
        return "sha256:" + hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()
    split = _END_OF_HEADERS.search(raw)
    head, body = (raw[:split.start()], raw[split.end():]) if split else (raw, b"")
    if msg is None:
        msg = email.message_from_bytes(head + b"\n\n", policy=default_policy)
    digest = hashlib.sha256()
    for name in ("from", "subject", "date"):
        value = next((v for k, v in msg.raw_items() if k.lower() == name), "")  # type: ignore[attr-defined]
        digest.update(" ".join(str(value).split()).encode("utf-8", "surrogateescape") + b"\0")
    digest.update(body.replace(b"\r\n", b"\n").rstrip(b"\n"))
    return "sha256:" + digest.hexdigest()


def decode_text(data: bytes, declared: str | None) -> tuple[str, str | None]:
    """Decode ``data``; return the text and a note when the declared charset was not used."""
    codec = _codec(declared)
    if codec in _SINGLE_BYTE and _is_non_ascii_utf8(data):
        return data.decode("utf-8"), f"charset declared {declared} but the text is UTF-8"
    if codec is not None:
        try:
            return data.decode(codec), None
        except UnicodeDecodeError:
            pass
    for fallback in ("utf-8", "cp1252", "latin-1"):
        try:
            text = data.decode(fallback)
        except UnicodeDecodeError:
            continue
        if declared is None and fallback == "utf-8":
            return text, None
        return text, f"charset {declared or 'undeclared'} did not decode; read as {fallback}"
    raise AssertionError("latin-1 decodes any byte")  # pragma: no cover


def html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # keep the customer's lines as they are
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_links = False
    return converter.handle(html).strip()


def parse_email(raw: bytes, *, max_attachment_bytes: int, headers_only: bool = False
                ) -> ParsedEmail:
    """Everything the envelope needs from one message; ``MalformedEmail`` if it is not one."""
    if not raw.strip():
        raise MalformedEmail("empty message")
    try:
        msg = email.message_from_bytes(raw, policy=default_policy)
    except Exception as exc:  # the parser is lenient; anything it raises means garbage
        raise MalformedEmail(f"unparseable message: {exc!r}") from exc
    names = {name.lower() for name in msg}
    if not names & {"from", "message-id", "date", "subject", "sender"}:
        raise MalformedEmail("no From, Message-ID, Date or Subject header: not an email")
    parsed = ParsedEmail(content_digest=content_digest(raw, headers_only=headers_only, msg=msg))
    _read_headers(msg, parsed)
    if headers_only:
        return parsed
    plain: list[str] = []
    html: list[str] = []
    _walk(msg, parsed, plain, html, max_attachment_bytes)
    if plain:
        parsed.text, parsed.text_source = "\n\n".join(plain).strip(), "plain"
    elif html:
        parsed.text, parsed.text_source = html_to_text("\n".join(html)), "html"
    return parsed


def _read_headers(msg: Message, parsed: ParsedEmail) -> None:
    parsed.message_id = _first_id(_header(msg, "message-id"))
    parsed.in_reply_to = _first_id(_header(msg, "in-reply-to"))
    parsed.references = _MESSAGE_ID.findall(_header(msg, "references") or "")
    parsed.subject = _header(msg, "subject")
    sender = _addresses(msg, "from") or _addresses(msg, "sender")
    if sender:
        parsed.from_name, parsed.from_email = sender[0]
    parsed.to = [addr for _, addr in _addresses(msg, "to")]
    parsed.cc = [addr for _, addr in _addresses(msg, "cc")]
    parsed.date = _date(msg)
    for name in AUTO_REPLY_HEADERS:
        value = _header(msg, name)
        if value is not None:
            parsed.headers[name] = value
    for name, value in (("message-id", parsed.message_id), ("to", ", ".join(parsed.to)),
                        ("cc", ", ".join(parsed.cc)), ("date", _header(msg, "date"))):
        if value:
            parsed.headers[name] = value


def _header(msg: Message, name: str) -> str | None:
    """A header as text, RFC 2047 decoded; 8-bit bytes decoded like a body; never raises."""
    try:
        value = msg.get(name)
        if value is None:
            return None
        text = str(value)
    except Exception:  # a broken encoded-word or structure: fall back to the raw value
        raw = next((v for k, v in msg.raw_items() if k.lower() == name), None)  # type: ignore[attr-defined]
        if raw is None:
            return None
        text = str(raw)
    text = " ".join(_clean(text).split())
    return text or None


def _clean(text: str) -> str:
    """Undo the parser's surrogate escapes (raw 8-bit bytes in a header) by decoding them."""
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        text, _ = decode_text(text.encode("utf-8", "surrogateescape"), None)
    return text


def _addresses(msg: Message, name: str) -> list[tuple[str | None, str]]:
    try:
        header: Any = msg.get(name)  # an AddressHeader under the modern policy
        if header is None:
            return []
        found = [(_clean(a.display_name) or None, _clean(a.addr_spec))
                 for a in header.addresses if a.addr_spec]
        if found:
            return found
    except Exception:
        pass
    text = _header(msg, name) or ""
    pairs = email.utils.getaddresses([text])
    return [(n or None, a) for n, a in pairs if "@" in a]


def _date(msg: Message) -> datetime | None:
    try:
        header: Any = msg.get("date")  # a DateHeader under the modern policy
        value = header.datetime if header is not None else None
    except Exception:
        value = None
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _first_id(value: str | None) -> str | None:
    if not value:
        return None
    found = _MESSAGE_ID.search(value)
    return found.group(0) if found else value.strip() or None


def _walk(part: Message, parsed: ParsedEmail, plain: list[str], html: list[str],
          limit: int) -> None:
    content_type = part.get_content_type()
    if part.is_multipart() and content_type != "message/rfc822":
        children: Any = part.iter_parts() if isinstance(part, EmailMessage) else part.get_payload()
        for child in children:
            if isinstance(child, Message):
                _walk(child, parsed, plain, html, limit)
        return
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    filename = _filename(part)
    is_body = disposition != "attachment" and not (filename and disposition == "inline"
                                                   and not content_type.startswith("text/"))
    if is_body and content_type in ("text/plain", "text/html"):
        data = _payload(part)
        text, note = decode_text(data, _charset(part))
        if note:
            parsed.notes.append(f"{content_type}: {note}")
        (plain if content_type == "text/plain" else html).append(text)
        return
    _attach(part, content_type, filename, parsed, limit)


def _attach(part: Message, content_type: str, filename: str | None, parsed: ParsedEmail,
            limit: int) -> None:
    if content_type == "message/rfc822":
        inner = part.get_payload()
        payload = inner[0] if isinstance(inner, list) and inner else inner
        data = payload.as_bytes() if isinstance(payload, Message) else _payload(part)
    else:
        data = _payload(part)
    if content_type == "application/octet-stream" and filename:
        guessed, _ = mimetypes.guess_type(filename)
        content_type = guessed or content_type
    if len(data) > limit:
        parsed.attachments.append(ParsedAttachment(
            filename, content_type, len(data), None,
            f"attachment of {len(data)} bytes over the {limit}-byte limit; not stored"))
        parsed.notes.append(f"attachment {filename or content_type} over the size limit")
        return
    parsed.attachments.append(ParsedAttachment(filename, content_type, len(data), data))


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return " ".join(_clean(name).split()) if name else None


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset.strip().strip('"')).name.replace("-", "_")
    except LookupError:
        return None


def _is_non_ascii_utf8(data: bytes) -> bool:
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
