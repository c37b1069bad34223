"""Read a directory file (CSV, YAML or JSON) into employees, reporting bad rows by line.

CSV: one row per employee, header
``account_id,account_name,tier,country,language,employee_id,name,role,emails,phones,whatsapp``
(several emails/phones separated by ``;``). YAML/JSON: ``accounts:`` each with its
``employees:`` (see ``config/employees.example.yaml`` and ``docs/identify-spam.md``).
A bad row is reported with its line and skipped; the others still load.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.configfile import YamlDocument, parse_yaml
from pipeline.errors import ConfigError
from pipeline.identify.directory import Account, DirectoryEmployee

CSV_COLUMNS = ("account_id", "account_name", "tier", "country", "language", "employee_id",
               "name", "role", "emails", "phones", "whatsapp")
_REQUIRED_CSV = ("account_id", "employee_id")
_SPLIT = re.compile(r"[;|]")


@dataclass
class RowProblem:
    line: int  # 0 when unknown (JSON indented with tabs is read without line numbers)
    message: str
    where: str = ""  # the item's path, e.g. accounts[2].employees[0]

    def location(self, path: str) -> str:
        return f"{path}:{self.line}" if self.line else f"{path} {self.where}"

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else f"{self.where}: {self.message}"


@dataclass
class ImportResult:
    employees: list[DirectoryEmployee] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def read_directory_file(path: str | Path, default_region: str = "FR") -> ImportResult:
    """Parse a directory file; its format follows the extension (.csv, .yaml/.yml, .json)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return parse_csv(text, default_region)
    if suffix in (".yaml", ".yml", ".json"):
        return parse_structured(text, str(path), default_region)
    raise ConfigError(f"{path}: unknown directory format {suffix!r} (use .csv, .yaml or .json)")


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in _SPLIT.split(value or "") if part.strip()]


def _check(employee: DirectoryEmployee, region: str, line: int,
           seen: dict[str, int]) -> RowProblem | None:
    bad = employee.invalid_addresses(region)
    if bad:
        return RowProblem(line, f"employee {employee.id}: unreadable address(es) "
                                f"{', '.join(repr(b) for b in bad)}")
    if not employee.addresses(region):
        return RowProblem(line, f"employee {employee.id}: no email, phone or WhatsApp id")
    if employee.id in seen:
        return RowProblem(line, f"employee {employee.id} already defined on line "
                                f"{seen[employee.id]}")
    return None


def _explain(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}"
                     for e in exc.errors())


def parse_csv(text: str, default_region: str = "FR") -> ImportResult:
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in _REQUIRED_CSV if c not in header]
    if missing:
        raise ConfigError(f"line 1: CSV header lacks column(s) {', '.join(missing)}; "
                          f"expected {','.join(CSV_COLUMNS)}")
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k}
        try:
            employee = DirectoryEmployee(
                id=row.get("employee_id", ""), name=row.get("name", ""),
                role=row.get("role") or None, emails=_split(row.get("emails")),
                phones=_split(row.get("phones")), whatsapp_ids=_split(row.get("whatsapp")),
                account=Account(id=row.get("account_id", ""), name=row.get("account_name", ""),
                                tier=row.get("tier") or "standard",
                                country=row.get("country") or None,
                                language=row.get("language") or None))
        except ValidationError as exc:
            result.problems.append(RowProblem(line, _explain(exc)))
            continue
        problem = _check(employee, default_region, line, seen)
        if problem:
            result.problems.append(problem)
            continue
        seen[employee.id] = line
        result.employees.append(employee)
    return result


def parse_structured(text: str, path: str, default_region: str = "FR") -> ImportResult:
    """YAML or JSON (JSON is YAML): ``{accounts: [{id, name, tier, ..., employees: [...]}]}``."""
    try:
        doc = parse_yaml(text, path)
    except ConfigError:
        if not path.lower().endswith(".json"):
            raise
        # Valid JSON that YAML refuses (tab indentation): read it without line numbers.
        try:
            doc = YamlDocument(path, json.loads(text))
        except ValueError as exc:
            raise ConfigError(f"{path}: invalid JSON: {exc}") from exc
    result = ImportResult()
    accounts = doc.data.get("accounts") if isinstance(doc.data, dict) else None
    if not isinstance(accounts, list):
        raise ConfigError(f"{path}:1: expected a top-level 'accounts:' list")
    seen: dict[str, int] = {}
    for a, raw_account in enumerate(accounts):
        account_line = doc.line_of(("accounts", a)) or 0
        account_where = f"accounts[{a}]"
        if not isinstance(raw_account, dict):
            result.problems.append(RowProblem(account_line, "an account must be a mapping",
                                              account_where))
            continue
        fields = {k: v for k, v in raw_account.items() if k != "employees"}
        try:
            account = Account.model_validate(_strings(fields))
        except ValidationError as exc:
            result.problems.append(RowProblem(account_line, f"account: {_explain(exc)} "
                                              "(its employees are skipped)", account_where))
            continue
        for e, raw in enumerate(raw_account.get("employees") or []):
            line = doc.line_of(("accounts", a, "employees", e)) or account_line
            where = f"{account_where}.employees[{e}]"
            if not isinstance(raw, dict):
                result.problems.append(RowProblem(line, "an employee must be a mapping", where))
                continue
            try:
                employee = DirectoryEmployee.model_validate(
                    {**_strings(raw), "account": account.model_dump()})
            except ValidationError as exc:
                result.problems.append(RowProblem(line, _explain(exc), where))
                continue
            problem = _check(employee, default_region, line, seen)
            if problem:
                problem.where = where
                result.problems.append(problem)
                continue
            seen[employee.id] = line
            result.employees.append(employee)
    return result


def _strings(raw: dict[str, Any]) -> dict[str, Any]:
    """YAML reads ids like 1042 and phones like 0612345678 as numbers: keep them as text."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "whatsapp":
            key = "whatsapp_ids"
        if key in ("email", "phone"):
            key += "s"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if key in ("emails", "phones", "whatsapp_ids") and isinstance(value, str):
            value = _split(value)
        if isinstance(value, list):
            value = [str(v) for v in value]
        out[key] = value
    return out
