"""YAML configuration files validated by pydantic, with errors that name file, key and line.

Used for ``config/pipeline.yaml`` and for the files support leads edit (routing rules, spam
policy): a lead who breaks a file must see ``routing.yaml:42 rules.3.queue: field required``,
not a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.errors import ConfigError

Loc = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass
class YamlDocument:
    """Parsed YAML data plus the line (1-based) where each key or item starts."""

    path: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Iterable[str | int]) -> int | None:
        """Line of the deepest part of ``loc`` present in the file."""
        key = tuple(loc)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return None


def parse_yaml(text: str, path: str = "<string>") -> YamlDocument:
    """Parse YAML text; a syntax error becomes a ConfigError with the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from exc
    if node is None:
        return YamlDocument(path, {})
    lines: dict[Loc, int] = {}
    data = _construct(node, (), lines)
    return YamlDocument(path, data, lines)


def load_yaml(path: str | Path) -> YamlDocument:
    """Read and parse a YAML file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_yaml(text, str(path))


def validate(model: type[ModelT], doc: YamlDocument, *, root: Loc = ()) -> ModelT:
    """Validate the document (or the part under ``root``) against ``model``."""
    data = doc.data
    for part in root:
        data = data.get(part, {}) if isinstance(data, dict) else {}
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, doc, root=root)) from exc


def describe_errors(exc: ValidationError, doc: YamlDocument | None, *, root: Loc = ()) -> str:
    """One line per problem: ``file:line key.path: message``."""
    out = []
    for err in exc.errors():
        loc = root + tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = doc.line_of(loc) if doc is not None else None
        where = f"{doc.path}:{line}" if doc is not None and line else (doc.path if doc else "")
        prefix = f"{where} " if where else ""
        out.append(f"{prefix}{key}: {err['msg']}")
    return "\n".join(out)


def _construct(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*loc, key)
            result[key] = _construct(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
