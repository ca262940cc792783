"""The OpenAPI 3.1 document of ``/api``: every route of the JSON API, generated from the pydantic models.

:func:`openapi_document` builds it from :data:`OPERATIONS` (one :class:`Operation` per method and
path: its parameters, its request body model, its answers' models) — the dashboard's routes
(:mod:`shared.dashboard.api`) and those of :mod:`shared.runtime.api` (the audit, approve, deny,
cancel). Schemas are the models' own (``model_json_schema`` through
:func:`pydantic.json_schema.models_json_schema`, ``$ref`` s as ``#/components/schemas/{model}``;
OpenAPI 3.1 schemas are JSON Schema 2020-12, which pydantic writes): request bodies in validation
mode, answers in serialization mode. Every operation but the document itself needs the bearer
token (security scheme ``bearer``); every refusal is :class:`ErrorReply`.

Adding a route to the API means adding its :class:`Operation` here: the tests check that every
``/api`` route of the app is in the document, with its method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.dashboard.views import (
    DEFAULT_DAYS,
    DEFAULT_PER_PAGE,
    MAX_DAYS,
    MAX_PER_PAGE,
    ApprovalsView,
    AuditEntry,
    CalendarView,
    FleetView,
    RunDetail,
    RunsPage,
)
from shared.domain.commands import KINDS, RUN_ID, TARGET_NAME
from shared.runtime.api import (
    DEFAULT_LIMIT,
    IDEMPOTENCY_HEADER,
    MAX_LIMIT,
    ApproveBody,
    CancelBody,
    CommandBody,
    DenyBody,
)
from shared.store.ledger import RunState

__all__ = [
    "OPERATIONS",
    "AuditPage",
    "CommandAccepted",
    "CommandAnswer",
    "ErrorReply",
    "Operation",
    "Parameter",
    "openapi_document",
]

REF = "#/components/schemas/{model}"


class ErrorReply(BaseModel):
    """Every refusal: what was wrong and the parameter, field or header it was in."""

    error: str
    field: str | None = None
    #: a command the grammar refused: its usage line
    usage: str | None = None


class AuditPage(BaseModel):
    entries: list[AuditEntry]


class CommandAnswer(BaseModel):
    """A command executed (200 ``ok``, 403 ``refused``, 409 ``invalid``, 502 ``error``)."""

    model_config = ConfigDict(extra="allow")

    id: str
    outcome: str
    reply: str | None = None
    entry: AuditEntry


class CommandAccepted(BaseModel):
    """Published; its audit entry did not come in time (``GET /api/audit?run=`` shows it later)."""

    id: str
    status: Literal["accepted"]


@dataclass(frozen=True)
class Parameter:
    name: str
    where: Literal["query", "path", "header"]
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: Literal["get", "post"]
    path: str
    summary: str
    #: status → (description, model or None for no body)
    responses: dict[int, tuple[str, type[BaseModel] | None]]
    parameters: tuple[Parameter, ...] = ()
    body: type[BaseModel] | None = None
    tag: str = "dashboard"
    auth: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


_RUN_ID = Parameter(
    "id", "path", {"type": "string", "pattern": f"^{RUN_ID.pattern}$"}, "a run id", required=True
)
_KEY = Parameter(
    IDEMPOTENCY_HEADER,
    "header",
    {"type": "string", "minLength": 1, "maxLength": 64},
    "a retried request with the same key is the same command",
)
_READ_ERRORS: dict[int, tuple[str, type[BaseModel] | None]] = {
    400: ("a bad parameter (``field`` names it)", ErrorReply),
    401: ("no bearer token, or a wrong one", ErrorReply),
}
_COMMAND: dict[int, tuple[str, type[BaseModel] | None]] = {
    200: ("the command ran (outcome ok)", CommandAnswer),
    202: ("published; no audit entry yet", CommandAccepted),
    400: ("a bad id, body or header (``field`` names it)", ErrorReply),
    401: ("no bearer token, or a wrong one", ErrorReply),
    403: ("the token's role may not (outcome refused)", CommandAnswer),
    409: ("the run's state does not allow it (outcome invalid)", CommandAnswer),
    422: ("this Idempotency-Key was used for another command", ErrorReply),
    502: ("the command failed (outcome error)", CommandAnswer),
}


def _int(low: int, high: int | None = None, default: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", "minimum": low}
    if high is not None:
        out["maximum"] = high
    if default is not None:
        out["default"] = default
    return out


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get",
        "/api/runs",
        "Runs, newest first, filtered and paginated; counts per state",
        {200: ("a page of runs", RunsPage), **_READ_ERRORS},
        (
            Parameter("state", "query", {"type": "string", "enum": [s.value for s in RunState]}),
            Parameter("kind", "query", {"type": "string", "enum": list(KINDS)}),
            Parameter("window", "query", {"type": "string"}, "one of the fleet's windows"),
            Parameter("wave", "query", _int(0)),
            Parameter("target", "query", {"type": "string", "pattern": TARGET_NAME.pattern}),
            Parameter("page", "query", _int(1, default=1)),
            Parameter("per_page", "query", _int(1, MAX_PER_PAGE, DEFAULT_PER_PAGE)),
        ),
    ),
    Operation(
        "get",
        "/api/runs/{id}",
        "One run: its stage timeline, last vendor error, approval, audit, the actions the token may take",
        {200: ("the run", RunDetail), **_READ_ERRORS, 404: ("no such run", ErrorReply)},
        (_RUN_ID,),
    ),
    Operation(
        "get",
        "/api/fleet",
        "Every target: version, policies, next window, freezes, last run (live: and the vendor's own answer)",
        {200: ("the fleet", FleetView), **_READ_ERRORS},
        (Parameter("live", "query", {"type": "boolean", "default": False}, "ask each vendor (cached 60 s)"),),
    ),
    Operation(
        "get",
        "/api/calendar",
        "The windows' occurrences and the freezes of the next days, in UTC, each window's zone and tz",
        {200: ("the calendar", CalendarView), **_READ_ERRORS},
        (
            Parameter("days", "query", _int(1, MAX_DAYS, DEFAULT_DAYS)),
            Parameter("tz", "query", {"type": "string"}, "the viewer's IANA time zone"),
        ),
    ),
    Operation(
        "get",
        "/api/approvals",
        "Runs waiting for approval: who granted, who may, until when",
        {200: ("what waits", ApprovalsView), **_READ_ERRORS},
    ),
    Operation(
        "get",
        "/api/audit",
        "The audit trail, oldest first (the last ``limit``; one run's)",
        {200: ("audit entries", AuditPage), **_READ_ERRORS},
        (
            Parameter("run", "query", {"type": "string", "pattern": f"^{RUN_ID.pattern}$"}),
            Parameter("limit", "query", _int(1, MAX_LIMIT, DEFAULT_LIMIT)),
        ),
        tag="control",
    ),
    Operation(
        "post",
        "/api/runs/{id}/approve",
        "approve <id> [comment]",
        _COMMAND,
        (_RUN_ID, _KEY),
        ApproveBody,
        tag="control",
    ),
    Operation(
        "post",
        "/api/runs/{id}/deny",
        "deny <id> <reason>",
        _COMMAND,
        (_RUN_ID, _KEY),
        DenyBody,
        tag="control",
    ),
    Operation(
        "post",
        "/api/runs/{id}/cancel",
        "cancel <id>",
        _COMMAND,
        (_RUN_ID, _KEY),
        CancelBody,
        tag="control",
    ),
    Operation(
        "post",
        "/api/runs/{id}/pause",
        "pause <the run's target>",
        {**_COMMAND, 404: ("no such run", ErrorReply)},
        (_RUN_ID, _KEY),
        CommandBody,
        tag="control",
    ),
    Operation(
        "post",
        "/api/runs/{id}/resume",
        "resume <the run's target>",
        {**_COMMAND, 404: ("no such run", ErrorReply)},
        (_RUN_ID, _KEY),
        CommandBody,
        tag="control",
    ),
    Operation(
        "get",
        "/api/openapi.json",
        "This document",
        {200: ("the OpenAPI 3.1 document", None)},
        tag="meta",
        auth=False,
    ),
)


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for op in OPERATIONS:
        wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
        if op.body is not None:
            wanted.append((op.body, "validation"))
        wanted += [(m, "serialization") for _, m in op.responses.values() if m is not None]
        seen += [w for w in wanted if w not in seen]
    return seen


def openapi_document(*, title: str = "Upshift API", version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`OPERATIONS` (a new dict each call)."""
    refs, top = models_json_schema(_models(), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {}
        for status, (description, model) in sorted(op.responses.items()):
            answer: dict[str, Any] = {"description": description}
            if model is not None:
                answer["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
            else:
                answer["content"] = {"application/json": {"schema": {"type": "object"}}}
            responses[str(status)] = answer
        operation: dict[str, Any] = {
            "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '').replace('.', '_')}",
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required or p.where == "path",
                    "schema": p.schema,
                    **({"description": p.description} if p.description else {}),
                }
                for p in op.parameters
            ],
            "responses": responses,
            "security": [{"bearer": []}] if op.auth else [],
            **op.extra,
        }
        if op.body is not None:
            operation["requestBody"] = {
                # (an empty body is {}: required only when the model has a required field)
                "required": any(f.is_required() for f in op.body.model_fields.values()),
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "The JSON API of `upshift serve`: what the dashboard shows, and the run commands.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token of the fleet file's auth.tokens",
                }
            },
        },
        "security": [{"bearer": []}],
        "tags": [
            {"name": "dashboard", "description": "the views every dashboard page shows"},
            {"name": "control", "description": "the audit and the run commands (chat's grammar)"},
            {"name": "meta", "description": "this document"},
        ],
    }
