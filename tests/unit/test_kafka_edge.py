"""One Kafka client edge: aiokafka is imported by pipeline/kafka/ (and faust's own consumer
wiring in pipeline/faust_app.py), nowhere else in the pipeline or the connectors."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"pipeline/faust_app.py"}


def imports_aiokafka(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import) and any(
                a.name.split(".")[0] == "aiokafka" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "aiokafka":
            return True
    return False


def test_aiokafka_is_imported_only_at_the_kafka_edge() -> None:
    offenders = sorted(
        str(path.relative_to(ROOT)) for package in ("pipeline", "connectors")
        for path in (ROOT / package).rglob("*.py")
        if not path.relative_to(ROOT).as_posix().startswith("pipeline/kafka/")
        and path.relative_to(ROOT).as_posix() not in ALLOWED and imports_aiokafka(path))
    assert offenders == [], f"aiokafka imported outside pipeline/kafka/: {offenders}"
