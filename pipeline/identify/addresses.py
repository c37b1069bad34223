"""Sender addresses in one canonical form, so the directory and a message compare equal.

Phones become E.164 (``+33612345678``) with ``phonenumbers``; e-mails are lower-cased
whole addresses without display name or ``mailto:``; WhatsApp ids are the phone they stand
for. A canonical address is written ``kind:value`` (``phone:+33612345678``,
``email:marie@boulangerie-dupont.fr``) and is the key of the directory's address index.
"""

from __future__ import annotations

import re
from email.utils import parseaddr

import phonenumbers

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(raw: str | None) -> str | None:
    """``"Marie" <Marie.Dupont@Example.FR>`` → ``marie.dupont@example.fr``; else None."""
    if not raw:
        return None
    text = raw.strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:"):]
    _name, address = parseaddr(text)
    address = (address or text).strip().strip("<>").lower()
    if address.startswith("mailto:"):
        address = address[len("mailto:"):]
    return address if _EMAIL.match(address) else None


def normalise_phone(raw: str | None, default_region: str = "FR") -> str | None:
    """Any written form of a phone number → E.164, or None when it is not a valid number.

    Accepts ``whatsapp:+33…``, ``tel:``, spaces, dots and dashes, national numbers
    (``06 12 34 56 78`` read in ``default_region``) and the ``00`` international prefix.
    """
    if not raw:
        return None
    text = raw.strip()
    for prefix in ("whatsapp:", "tel:", "sms:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):].strip()
    digits = re.sub(r"[\s.\-()/]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        number = phonenumbers.parse(digits, default_region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_whatsapp(raw: str | None, default_region: str = "FR") -> str | None:
    """A WhatsApp id is a phone number (``whatsapp:+33…``); anything else is kept as an id."""
    if not raw:
        return None
    phone = normalise_phone(raw, default_region)
    if phone:
        return phone
    text = raw.strip().lower().removeprefix("whatsapp:")
    return text or None


def email_key(address: str) -> str:
    return f"email:{address}"


def phone_key(e164: str) -> str:
    return f"phone:{e164}"


def whatsapp_key(value: str) -> str:
    # A WhatsApp id that is a phone number matches the employee's registered phone.
    return phone_key(value) if value.startswith("+") else f"whatsapp:{value}"


def canonical(raw: str, default_region: str = "FR") -> str | None:
    """The canonical key of an address typed by a person (CLI lookup): e-mail or phone."""
    if "@" in raw:
        email = normalise_email(raw)
        return email_key(email) if email else None
    if raw.strip().lower().startswith("whatsapp:"):
        wa = normalise_whatsapp(raw, default_region)
        return whatsapp_key(wa) if wa else None
    phone = normalise_phone(raw, default_region)
    return phone_key(phone) if phone else None
