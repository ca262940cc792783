"""YAML config files validated by pydantic, with errors that name the file, the line and the field.

Every config edge (fleet file, simulator fleet, manifest) goes through :func:`parse_yaml_model`,
so an operator always gets ``fleet.yaml:12: targets[3].window: …`` and never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shared.errors import ConfigError

__all__ = ["field_path", "line_of", "load_yaml_model", "parse_yaml", "parse_yaml_model"]

M = TypeVar("M", bound=BaseModel)


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at pydantic ``loc`` (the deepest node found)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def field_path(loc: tuple[Any, ...]) -> str:
    """``('targets', 2, 'kind')`` → ``targets[2].kind``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(root)"


def parse_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (for line numbers); ConfigError on a syntax error."""
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None


def validation_error(exc: ValidationError, tree: yaml.Node | None, source: str) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    line = line_of(tree, loc)
    return ConfigError(f"{source}:{line}" if line else source, f"{field_path(loc)}: {err['msg']}")


def parse_yaml_model(
    text: str, model: type[M], source: str = "<config>", *, doc: Any = None, tree: Any = None
) -> M:
    """Validate YAML ``text`` (or an already-parsed ``doc``/``tree``) as ``model``."""
    if doc is None:
        doc, tree = parse_yaml(text, source)
    try:
        return model.model_validate(doc if doc is not None else {})
    except ValidationError as exc:
        raise validation_error(exc, tree, source) from None


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read: {exc.strerror}") from None
    return parse_yaml_model(text, model, str(p))
