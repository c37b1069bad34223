"""Directory files: CSV, YAML and JSON load; bad rows are reported by line and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.identify.importfile import parse_csv, parse_structured, read_directory_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["employees.example.yaml", "employees.example.csv"])
def test_shipped_examples_load_completely(name):
    result = read_directory_file(ROOT / "config" / name)
    assert result.problems == []
    by_id = {e.id: e for e in result.employees}
    assert by_id["EMP-1042-1"].account.tier == "standard"
    assert by_id["EMP-3150-1"].account.language == "en"
    assert "phone:+33612345678" in by_id["EMP-1042-1"].addresses("FR")


def test_csv_bad_rows_reported_with_line_and_rest_loads():
    text = (
        "account_id,account_name,tier,country,language,employee_id,name,role,emails,phones,whatsapp\n"
        "ACC-1,Dupont,standard,FR,fr,E1,Marie,gérante,marie@dupont.fr,06 12 34 56 78,\n"
        "ACC-1,Dupont,standard,FR,fr,,Sans Id,,x@dupont.fr,,\n"
        "ACC-1,Dupont,standard,FR,fr,E3,Paul,,paul@,,\n"
        "ACC-1,Dupont,standard,FR,fr,E4,Sans Adresse,,,,\n"
        "ACC-1,Dupont,standard,FR,fr,E1,Doublon,,autre@dupont.fr,,\n"
        "ACC-2,Lefèvre,premium,FR,fr,E6,Claire,,claire@lefevre.fr;compta@lefevre.fr,0033142685300,\n"
    )
    result = parse_csv(text)
    assert [e.id for e in result.employees] == ["E1", "E6"]
    assert [p.line for p in result.problems] == [3, 4, 5, 6]
    assert result.problems[0].message.startswith("id:")
    assert "'paul@'" in result.problems[1].message
    assert "no email" in result.problems[2].message
    assert "already defined on line 2" in result.problems[3].message
    assert result.employees[1].emails == ["claire@lefevre.fr", "compta@lefevre.fr"]


def test_yaml_bad_employee_reported_with_its_line():
    text = """accounts:
  - id: ACC-1
    tier: standard
    employees:
      - id: E1
        emails: [marie@dupont.fr]
      - id: E2
        phones: ["06 12"]
      - id: 1042
        phones: ["07 81 22 33 44"]
  - name: no id here
    employees:
      - id: E9
        emails: [x@y.fr]
"""
    result = parse_structured(text, "employees.yaml")
    assert [e.id for e in result.employees] == ["E1", "1042"]
    assert [(p.line, "unreadable" in p.message or "account" in p.message)
            for p in result.problems] == [(7, True), (11, True)]


def test_json_loads_with_lines(tmp_path):
    path = tmp_path / "employees.json"
    path.write_text(json.dumps({"accounts": [{"id": "ACC-3", "tier": "premium", "employees": [
        {"id": "E1", "email": "james@harbour.co.uk"}, {"id": "E2"}]}]}, indent=2))
    result = read_directory_file(path)
    assert [e.id for e in result.employees] == ["E1"]
    assert len(result.problems) == 1 and result.problems[0].line > 1


def test_json_indented_with_tabs_loads_and_names_the_item(tmp_path):
    path = tmp_path / "employees.json"
    path.write_text(json.dumps({"accounts": [{"id": "ACC-3", "employees": [
        {"id": "E1", "phones": ["+44 20 7946 0958"]}, {"id": "E2", "phones": ["12"]}]}]},
        indent="\t"))
    result = read_directory_file(path)
    assert [e.id for e in result.employees] == ["E1"]
    assert result.problems[0].location(str(path)).endswith("accounts[0].employees[1]")


def test_unknown_format_and_missing_header_are_errors(tmp_path):
    (tmp_path / "x.txt").write_text("Marie marie@dupont.fr")
    with pytest.raises(ConfigError, match="unknown directory format"):
        read_directory_file(tmp_path / "x.txt")
    with pytest.raises(ConfigError, match="lacks column"):
        parse_csv("name,emails\nMarie,marie@dupont.fr\n")
