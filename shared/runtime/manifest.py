"""``serverless.yml``: the single source of truth for functions, their handlers and triggers.

It keeps the Serverless Framework v3 shape (``service``, ``provider``, ``functions.<name>``
with ``handler`` and ``events``) so it reads naturally; Upshift's own trigger is
``event: {type, where}``. ``http: {path, method}`` and ``schedule: rate(1 minute)`` are the
other two. Every runtime (the bus host, the server, the functions-framework targets) reads its
functions from here and nowhere else.

Contract: :func:`load_manifest` validates everything (the shape, known event types, one trigger
kind each, handler paths that import) and reports a problem as ``ConfigError`` naming the file,
the function and the field; ``resolve=False`` skips importing the handlers, so a process that
runs one function imports only that one's module (:func:`resolve_function`).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from events.catalog import CATALOG
from shared.errors import ConfigError
from shared.runtime.function import UpshiftFunction
from shared.yamlconf import parse_yaml, parse_yaml_model, read_yaml_text

__all__ = [
    "DEFAULT_MANIFEST",
    "EventTrigger",
    "FunctionDef",
    "HttpTrigger",
    "Manifest",
    "Trigger",
    "load_manifest",
    "resolve_function",
    "resolve_handler",
]

DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "serverless.yml"
_RATE = re.compile(r"^rate\((\d+) (second|seconds|minute|minutes|hour|hours)\)$")
_UNIT = {"second": 1, "minute": 60, "hour": 3600}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EventTrigger(_Strict):
    type: str
    where: dict[str, str] = {}
    max_attempts: int = Field(default=5, ge=1, le=1000)
    concurrency: int = Field(default=16, ge=1, le=10_000)

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in CATALOG:
            raise ValueError(f"unknown event type {v!r}")
        return v


class HttpTrigger(_Strict):
    path: str = Field(pattern=r"^/[A-Za-z0-9_\-/{}.]*$")
    method: Literal["get", "post", "put", "delete", "GET", "POST", "PUT", "DELETE"] = "post"


class Trigger(_Strict):
    event: EventTrigger | None = None
    http: HttpTrigger | None = None
    schedule: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        if sum(x is not None for x in (self.event, self.http, self.schedule)) != 1:
            raise ValueError("each trigger is exactly one of event, http, schedule")
        if self.schedule is not None and not _RATE.match(self.schedule):
            raise ValueError("schedule must look like 'rate(1 minute)'")
        return self

    @property
    def every_seconds(self) -> float | None:
        if self.schedule is None:
            return None
        n, unit = _RATE.match(self.schedule).groups()  # type: ignore[union-attr]
        return int(n) * _UNIT[unit.rstrip("s")]


class FunctionDef(_Strict):
    handler: str = Field(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", description="module.path.callable")
    description: str = ""
    events: list[Trigger] = Field(min_length=1)


class Provider(_Strict):
    name: str = "google"
    runtime: str = "python311"
    region: str | None = None
    memorySize: int | None = None
    timeout: int | None = None


class Manifest(_Strict):
    service: str
    frameworkVersion: str = "3"
    provider: Provider = Provider()
    plugins: list[str] = []
    functions: dict[str, FunctionDef] = Field(min_length=1)

    @field_validator("functions")
    @classmethod
    def _names(cls, v: dict[str, FunctionDef]) -> dict[str, FunctionDef]:
        for name in v:
            if not re.match(r"^[a-z][a-z0-9_]{0,62}$", name):
                raise ValueError(f"function name {name!r} must be lower-case letters, digits, '_'")
        return v


def load_manifest(path: str | Path = DEFAULT_MANIFEST, *, resolve: bool = True) -> Manifest:
    """Parse and validate; ConfigError names the file, the function and the field on any problem."""
    path = Path(path)
    text = read_yaml_text(path)
    raw, tree = parse_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "must be a YAML mapping with service, provider, functions")
    manifest = parse_yaml_model(text, Manifest, str(path), doc=raw, tree=tree)
    if resolve:
        for name, fn in manifest.functions.items():
            try:
                resolve_handler(fn.handler)
            except ConfigError as exc:
                raise ConfigError(f"{path}: functions.{name}.handler", exc.message) from None
    return manifest


def resolve_handler(dotted: str) -> object:
    """Import ``module.attr``; ConfigError (not ImportError) when it is not there."""
    module_name, _, attr = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(dotted, f"cannot import module {module_name!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(dotted, f"module {module_name!r} has no {attr!r}") from None


def resolve_function(name: str, fdef: FunctionDef) -> UpshiftFunction:
    """The handler of manifest function ``name``; ConfigError unless it is an ``@upshift_function``."""
    fn = resolve_handler(fdef.handler)
    if not isinstance(fn, UpshiftFunction):
        raise ConfigError(
            f"functions.{name}.handler", f"{fdef.handler} is not decorated with @upshift_function"
        )
    return fn
