"""Identify: who sent a message, matched against the employee directory. Pure functions.

Trust order: a signed in-app identity is the account (the app authenticated the user);
otherwise every address the connector gave (e-mail, WhatsApp id, phone) is normalised and
looked up. An address registered under several accounts is *ambiguous*: the message is
not attributed to any of them (never guessed), and the candidates are listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.envelope import Envelope, Identity, Sender
from pipeline.identify.addresses import (
    email_key,
    normalise_email,
    normalise_phone,
    normalise_whatsapp,
    phone_key,
    whatsapp_key,
)
from pipeline.identify.directory import Account, Directory, DirectoryEmployee


@dataclass(frozen=True)
class Attempt:
    """One address tried: how it was given (``email``, ``whatsapp``, ``phone``) and its key."""

    matched_by: str
    key: str


def sender_addresses(sender: Sender, default_region: str) -> list[Attempt]:
    """The canonical addresses to look up, most specific first, without duplicates."""
    attempts: list[Attempt] = []
    email = normalise_email(sender.email)
    if email:
        attempts.append(Attempt("email", email_key(email)))
    wa = normalise_whatsapp(sender.whatsapp_id, default_region)
    if wa:
        attempts.append(Attempt("whatsapp", whatsapp_key(wa)))
    phone = normalise_phone(sender.phone, default_region)
    if phone:
        attempts.append(Attempt("phone", phone_key(phone)))
    unique: dict[str, Attempt] = {}
    for attempt in attempts:
        unique.setdefault(attempt.key, attempt)
    return list(unique.values())


def identify(envelope: Envelope, directory: Directory) -> Identity:
    """The sender's identity, or ``identified=False`` with what was tried."""
    app = envelope.sender.app_identity
    if app is not None:
        return _from_app_identity(app.account_id, app.user_id, app.name, app.email, directory)

    attempts = sender_addresses(envelope.sender, directory.default_region)
    tried = [a.key for a in attempts]
    # Each address narrows the possible accounts; the first one that matched says how.
    possible: set[str] | None = None
    first_match: tuple[Attempt, list[DirectoryEmployee]] | None = None
    all_owners: dict[str, DirectoryEmployee] = {}
    for attempt in attempts:
        owners = directory.owners(attempt.key)
        if not owners:
            continue
        all_owners.update({o.id: o for o in owners})
        accounts = {o.account.id for o in owners}
        possible = accounts if possible is None else (possible & accounts) or (possible | accounts)
        if first_match is None:
            first_match = (attempt, owners)
    if first_match is None or possible is None:
        return Identity(identified=False, tried=tried)
    if len(possible) > 1:
        return Identity(identified=False, ambiguous=True, tried=tried,
                        candidates=sorted(possible), matched_by=first_match[0].matched_by)

    account_id = next(iter(possible))
    attempt, owners = first_match
    employees = [o for o in all_owners.values() if o.account.id == account_id]
    in_first = [o for o in owners if o.account.id == account_id]
    employee = in_first[0] if len(in_first) == 1 else (employees[0] if len(employees) == 1
                                                        else None)
    return _identity(employee.account if employee else employees[0].account, employee,
                     attempt.matched_by, tried)


def _from_app_identity(account_id: str, user_id: str, name: str | None, email: str | None,
                       directory: Directory) -> Identity:
    employee = directory.employees.get(user_id)
    if employee is None or employee.account.id != account_id:
        # The app's user id need not be the directory's employee id: try the signed e-mail,
        # within the signed account only.
        address = normalise_email(email)
        owners = directory.owners(email_key(address)) if address else []
        same_account = [o for o in owners if o.account.id == account_id]
        employee = same_account[0] if len(same_account) == 1 else None
    if employee is not None:
        return _identity(employee.account, employee, "app_identity", [f"app:{user_id}"])
    # The app vouches for the account even when the user is not (yet) in "My employees".
    known = directory.account(account_id)
    identity = _identity(known or Account(id=account_id), None, "app_identity",
                         [f"app:{user_id}"])
    identity.employee_id = user_id
    identity.employee_name = name
    if known is None:
        identity.tier = None  # an account not in the directory: its tier is not known
    return identity


def _identity(account: Account, employee: DirectoryEmployee | None, matched_by: str,
              tried: list[str]) -> Identity:
    return Identity(
        identified=True, account_id=account.id, account_name=account.name or None,
        employee_id=employee.id if employee else None,
        employee_name=(employee.name or None) if employee else None,
        tier=account.tier, country=account.country, language=account.language,
        matched_by=matched_by, tried=tried)


def partition_key(envelope: Envelope) -> str:
    """From identification on, one customer's messages share a partition (account id)."""
    identity = envelope.identity
    if identity is not None and identity.identified and identity.account_id:
        return identity.account_id
    return envelope.sender_key
