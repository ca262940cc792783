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

__all__ = [
    "field_path",
    "line_of",
    "load_yaml_model",
    "parse_yaml",
    "parse_yaml_model",
    "read_yaml_text",
    "validation_errors",
    "yaml_model_errors",
]

M = TypeVar("M", bound=BaseModel)


class _DuplicateKey(yaml.MarkedYAMLError):
    """A mapping gives the same key twice (YAML 1.2 forbids it; PyYAML keeps the last)."""


try:
    # libyaml's parser when PyYAML was built with it: the same nodes and marks, ~5x faster — a
    # deployed function parses serverless.yml on its cold start.
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # a PyYAML without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _Loader(_SafeLoader):
    """SafeLoader that refuses duplicate mapping keys, naming both lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class refuses it, naming the line
                break
            if first is not None:
                raise _DuplicateKey(
                    problem=f"duplicate key {key!r} on lines {first} and {line}",
                    problem_mark=key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


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
    loader = _Loader(text)
    try:
        tree = loader.get_single_node()
        return (loader.construct_document(tree) if tree is not None else None), tree
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()


def _error(err: Any, tree: yaml.Node | None, source: str) -> ConfigError:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    line = line_of(tree, loc)
    return ConfigError(f"{source}:{line}" if line else source, f"{field_path(loc)}: {err['msg']}")


def validation_error(exc: ValidationError, tree: yaml.Node | None, source: str) -> ConfigError:
    """The first of ``exc``'s errors, as ``file:line: field: message``."""
    return _error(exc.errors(include_url=False)[0], tree, source)


def validation_errors(exc: ValidationError, tree: yaml.Node | None, source: str) -> list[ConfigError]:
    """Every one of ``exc``'s errors, as ``file:line: field: message``, in file order."""
    errors = [_error(e, tree, source) for e in exc.errors(include_url=False)]
    return sorted(errors, key=lambda e: _line(e.where))


def _line(where: str) -> int:
    _, _, line = where.rpartition(":")
    return int(line) if line.isdigit() else 0


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


def read_yaml_text(path: str | Path) -> str:
    """The text of a config file; ConfigError (not a traceback) if unreadable or not UTF-8."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{p}:{line}", f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    return parse_yaml_model(read_yaml_text(path), model, str(path))


def yaml_model_errors(path: str | Path, model: type[M]) -> tuple[M | None, list[ConfigError]]:
    """``path`` validated as ``model``: the model, or every error found (for ``fleet check``)."""
    try:
        doc, tree = parse_yaml(read_yaml_text(path), str(path))
    except ConfigError as exc:
        return None, [exc]
    try:
        return model.model_validate(doc if doc is not None else {}), []
    except ValidationError as exc:
        return None, validation_errors(exc, tree, str(path))
