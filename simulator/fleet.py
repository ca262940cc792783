"""The simulator's fleet file: YAML ``targets: [...]`` validated with pydantic.

A bad file raises :class:`shared.errors.ConfigError` whose ``where`` is ``file:line`` and whose
message names the field, e.g. ``fleet.yaml:7: targets[2].kind: Input should be 'cce', ...``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ConfigError
from shared.yamlconf import line_of, parse_yaml, parse_yaml_model, read_yaml_text
from simulator.core import Outcome, SimTarget

__all__ = ["FleetFile", "TargetSpec", "default_fleet", "load_fleet", "parse_fleet"]

Kind = Literal["cce", "autopilot", "starrocks", "oceanbase", "ncloud-kafka"]


class TargetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: Kind
    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    versions: list[str] = Field(default_factory=list)
    job_seconds: float = Field(600.0, ge=0)
    fail_next: bool = False
    #: every job on it: succeed, fail (the vendor's failure shape) or stall (never ends)
    outcome: Outcome = "succeed"
    extra: dict[str, Any] = Field(default_factory=dict)

    def to_target(self) -> SimTarget:
        return SimTarget(**self.model_dump())


class FleetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: list[TargetSpec]


def _coerce_ids(doc: Any) -> Any:
    # YAML reads `id: 22` and `version: 2823006` as ints; ids and versions are strings here.
    if isinstance(doc, dict) and isinstance(doc.get("targets"), list):
        for item in doc["targets"]:
            if isinstance(item, dict):
                for key in ("id", "version"):
                    if isinstance(item.get(key), int | float) and not isinstance(item.get(key), bool):
                        item[key] = str(item[key])
                if isinstance(item.get("versions"), list):
                    item["versions"] = [str(v) if isinstance(v, int | float) else v for v in item["versions"]]
    return doc


def parse_fleet(text: str, source: str = "<fleet>") -> list[SimTarget]:
    doc, tree = parse_yaml(text, source)
    if isinstance(doc, list):  # a bare list of targets is accepted too
        doc = {"targets": doc}
        tree = yaml.MappingNode(
            "tag:yaml.org,2002:map", [(yaml.ScalarNode("tag:yaml.org,2002:str", "targets"), tree)]
        )
    fleet = parse_yaml_model(text, FleetFile, source, doc=_coerce_ids(doc), tree=tree)
    targets = [spec.to_target() for spec in fleet.targets]
    seen: dict[str, int] = {}
    for i, t in enumerate(targets):
        if t.id in seen:
            raise ConfigError(
                f"{source}:{line_of(tree, ('targets', i, 'id'))}", f"targets[{i}].id: duplicate id {t.id!r}"
            )
        seen[t.id] = i
    return targets


def load_fleet(path: str | Path) -> list[SimTarget]:
    """Targets from a YAML fleet file; ConfigError naming file, line and field when it is wrong."""
    p = Path(path)
    return parse_fleet(read_yaml_text(p), str(p))


def default_fleet() -> list[SimTarget]:
    """Three targets of each kind (``simulator/default_fleet.yaml``)."""
    text = resources.files("simulator").joinpath("default_fleet.yaml").read_text(encoding="utf-8")
    return parse_fleet(text, "default_fleet.yaml")
