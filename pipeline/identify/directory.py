"""The employee directory: customer accounts' registered employees, and who owns an address.

Each employee is one record on the compacted topic ``directory.employees`` (key: employee
id, value: ``DirectoryEmployee`` JSON with its account denormalised; a tombstone deletes
it). ``Directory`` is the in-memory view a worker keeps of that topic, with an index from
canonical address (see ``addresses``) to the employees that registered it. Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.identify.addresses import (
    email_key,
    normalise_email,
    normalise_phone,
    normalise_whatsapp,
    phone_key,
    whatsapp_key,
)


class Account(BaseModel):
    """A customer account (the company that pays for support)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    name: str = ""
    tier: str = Field("standard", min_length=1)
    country: str | None = None
    language: str | None = None

    @field_validator("tier")
    @classmethod
    def _lower_tier(cls, tier: str) -> str:
        return tier.strip().lower()


class DirectoryEmployee(BaseModel):
    """One registered employee ("My employees"), as published on ``directory.employees``."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    name: str = ""
    role: str | None = None
    emails: list[str] = Field(default_factory=list)
    phones: list[str] = Field(default_factory=list)
    whatsapp_ids: list[str] = Field(default_factory=list)
    account: Account

    def addresses(self, default_region: str) -> list[str]:
        """Canonical keys of every address this employee registered (invalid ones skipped)."""
        keys: list[str] = []
        for raw in self.emails:
            email = normalise_email(raw)
            if email:
                keys.append(email_key(email))
        for raw in self.phones:
            phone = normalise_phone(raw, default_region)
            if phone:
                keys.append(phone_key(phone))
        for raw in self.whatsapp_ids:
            wa = normalise_whatsapp(raw, default_region)
            if wa:
                keys.append(whatsapp_key(wa))
        return list(dict.fromkeys(keys))

    def invalid_addresses(self, default_region: str) -> list[str]:
        """Addresses that cannot be read (reported by the import, never silently dropped)."""
        bad = [e for e in self.emails if not normalise_email(e)]
        bad += [p for p in self.phones if not normalise_phone(p, default_region)]
        bad += [w for w in self.whatsapp_ids if not normalise_whatsapp(w, default_region)]
        return bad


@dataclass
class Directory:
    """Employees by id and the address index; fed record by record from the topic."""

    default_region: str = "FR"
    employees: dict[str, DirectoryEmployee] = field(default_factory=dict)
    _index: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _by_account: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def apply(self, employee_id: str, employee: DirectoryEmployee | None) -> None:
        """Upsert (or delete, for ``None``) one employee and re-index its addresses."""
        old = self.employees.pop(employee_id, None)
        if old is not None:
            members = self._by_account.get(old.account.id)
            if members is not None:
                members.discard(employee_id)
                if not members:
                    del self._by_account[old.account.id]
            for key in old.addresses(self.default_region):
                ids = self._index.get(key)
                if ids is not None:
                    ids.discard(employee_id)
                    if not ids:
                        del self._index[key]
        if employee is None:
            return
        self.employees[employee_id] = employee
        self._by_account[employee.account.id].add(employee_id)
        for key in employee.addresses(self.default_region):
            self._index[key].add(employee_id)

    def apply_record(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one raw record of ``directory.employees`` (a tombstone has no value)."""
        if key is None:
            return
        employee_id = key.decode("utf-8")
        employee = DirectoryEmployee.model_validate_json(value) if value is not None else None
        self.apply(employee_id, employee)

    def owners(self, address_key: str) -> list[DirectoryEmployee]:
        """Employees that registered this canonical address, in a stable order."""
        return [self.employees[i] for i in sorted(self._index.get(address_key, ()))]

    def account(self, account_id: str) -> Account | None:
        """The account as its employees' records describe it (None: no employee registered)."""
        members = self._by_account.get(account_id)
        return self.employees[min(members)].account if members else None

    def __len__(self) -> int:
        return len(self.employees)
