"""The HTTP API of ``upshift serve``: the audit trail and the run commands, for scripts and dashboards.

Every route takes a bearer token of the fleet's ``auth.tokens`` (:func:`shared.runtime.edge.principal_of`:
401 with ``WWW-Authenticate`` without one or with a wrong one, before the body is read). Refusals
are ``{"error", "field"}`` naming what was wrong; nothing is published on any refusal.

* ``GET /api/audit?run=<run id>&limit=<n>`` (any role, viewer included) → 200 ``{"entries": [...]}``,
  the audit trail oldest first (:class:`shared.store.audit.Audit`), the last ``limit``
  (1…:data:`MAX_LIMIT`, default :data:`DEFAULT_LIMIT`), only ``run``'s when given. A ``run`` not
  shaped like :data:`shared.domain.commands.RUN_ID`, a bad ``limit`` or another parameter is 400
  naming it.
* ``POST /api/runs/{id}/approve`` ``{"comment"?, "user"?}``, ``/deny`` ``{"reason", "user"?}``,
  ``/cancel`` ``{"reason"?, "user"?}``: a JSON object (an empty body is ``{}``), bounded
  (:func:`shared.limits.loads_bounded`) and strict (unknown fields are 400 naming them); ``id``
  shaped like a run id (else 400, field ``id``). The route is the chat command ``approve <id>
  [comment]``, ``deny <id> <reason>``, ``cancel <id>`` — checked with
  :func:`shared.domain.commands.parse` (a refusal is 400 with its ``message`` and ``usage``) and
  published as ``chat.command`` (platform and channel ``api``, ``user`` the body's or else the
  token's name, ``via=token:<name>``). The grammar's ``cancel`` takes no reason: a cancel's
  ``reason`` is logged with the command's id, not executed.

  The flow from the text to the audit entry is :func:`shared.engine.chatops.submit.submit`
  (the dashboard's forms take the same one); this module reads the request and answers JSON.
  **Who may** is not decided here: ``chat_command`` authorizes the command with the token's
  ``rbac`` grants, executes it and records its audit entry; the route waits for that entry
  (at most ``command_wait_s``, :data:`COMMAND_WAIT_S` by default) and answers with it —
  ``ok`` 200, ``refused`` 403, ``invalid`` 409, ``error`` 502, each ``{"id", "outcome", "reply",
  "entry"}`` — or 202 ``{"id", "status": "accepted"}`` when none came in time (the command still
  runs; ``GET /api/audit`` shows it later).

  **Retries**: with an ``Idempotency-Key`` header (at most ``LIMITS.max_name`` printable
  characters) the command's id is ``consequence_id("api", <token name>, <key>)``, so a retried
  request is the same command (the bus drops the copy, the answer is the first one's); the same
  key with another command is 422 naming the header. Without one, every request is a new command.

Re-exported for ``upshift chat`` (:mod:`shared.ops.chat`), from
:mod:`shared.engine.chatops.submit`: :func:`command_event` (the ``chat.command`` of a command
typed outside chat) and :func:`await_entry` (the wait for its audit entry). Shared with the
dashboard's API (:mod:`shared.dashboard.api`): :func:`command_route`, the handler of one such
route, whose command text may be resolved from the run (``POST /api/runs/{id}/pause`` is
``pause <the run's target>``), and :class:`CommandBody`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.domain.access import Principal
from shared.domain.commands import RUN_ID
from shared.engine.chatops.submit import (
    BadCommand,
    Submission,
    Ungrammatical,
    await_entry,
    command_event,
    command_text,
    submit,
)
from shared.limits import LIMITS, JsonRefused, Limits, loads_bounded
from shared.runtime.edge import Refused, error_reply, principal_of, read_body
from shared.runtime.host import Runtime

__all__ = [
    "COMMAND_WAIT_S",
    "DEFAULT_LIMIT",
    "IDEMPOTENCY_HEADER",
    "MAX_LIMIT",
    "OUTCOME_STATUS",
    "ApproveBody",
    "CancelBody",
    "CommandBody",
    "DenyBody",
    "TextOf",
    "add_api_routes",
    "await_entry",
    "command_event",
    "command_route",
]

#: How long a command route waits for the command's audit entry before answering 202.
COMMAND_WAIT_S = 10.0
#: ``GET /api/audit``: entries returned without a ``limit``, and the most one may ask for.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: The answer's status for each audit outcome (another outcome: 502).
OUTCOME_STATUS = {"ok": 200, "refused": 403, "invalid": 409, "error": 502}


# -- bodies ----------------------------------------------------------------------------------------


class CommandBody(BaseModel):
    """The body of a command route: ``{"user"?}`` (and what a subclass adds)."""

    # strict: a typo ("coment") is a 400 naming it, not a comment silently dropped
    model_config = ConfigDict(extra="forbid")

    #: who acts, as the caller names them (recorded; the role comes from the token)
    user: str | None = None


_Body = CommandBody


class ApproveBody(_Body):
    comment: str | None = None


class DenyBody(_Body):
    reason: str


class CancelBody(_Body):
    reason: str | None = None


#: A route's command text from the run id and the body (it may read the store, and raise
#: :class:`~shared.runtime.edge.Refused`, e.g. 404 for an unknown run).
TextOf = Callable[[str, CommandBody], Awaitable[str]]


def _validation_refusal(exc: ValidationError) -> Refused:
    errors = exc.errors(include_url=False)
    unknown = [".".join(str(p) for p in e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        names = ", ".join(sorted(unknown))
        return Refused(error_reply(400, f"unknown field(s): {names}", names))
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"]) or "body"
    return Refused(error_reply(400, first["msg"], field))


def _body(raw: bytes, model: type[_Body]) -> _Body:
    try:
        doc: Any = loads_bounded(raw) if raw.strip() else {}
    except JsonRefused as exc:
        raise Refused(error_reply(400, exc.message, exc.field or "body")) from None
    if not isinstance(doc, dict):
        raise Refused(error_reply(400, "the body must be a JSON object", "body"))
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise _validation_refusal(exc) from None


def _run_id(value: str, field: str) -> str:
    if not RUN_ID.fullmatch(value):
        raise Refused(error_reply(400, f"{value[:80]!r} is not a run id (like 'r0123456789abcde')", field))
    return value


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not key or len(key) > LIMITS.max_name or not key.isprintable():
        # (aiohttp hands non-UTF-8 header bytes over as surrogates: not printable either)
        raise Refused(error_reply(400, f"1 to {LIMITS.max_name} printable characters", IDEMPOTENCY_HEADER))
    return key


# -- routes ----------------------------------------------------------------------------------------


def add_api_routes(
    app: web.Application, runtime: Runtime, *, limits: Limits = LIMITS, command_wait_s: float = COMMAND_WAIT_S
) -> None:
    """Add the routes above to ``app``, bound to ``runtime`` (its fleet's tokens, bus and store)."""
    auth = runtime.fleet.auth if runtime.fleet is not None else None

    async def get_audit(request: web.Request) -> web.Response:
        principal_of(auth, request)
        unknown = sorted(set(request.query) - {"run", "limit"})
        if unknown:
            return error_reply(400, f"unknown parameter(s): {', '.join(unknown)}", ", ".join(unknown))
        run = request.query.get("run")
        if run is not None:
            _run_id(run, "run")
        raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
        if not (raw_limit.isascii() and raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIMIT):
            return error_reply(400, f"limit must be a whole number from 1 to {MAX_LIMIT}", "limit")
        entries = await runtime.store.audit.entries(run=run, limit=int(raw_limit))
        return web.json_response({"entries": entries})

    def route(action: str, model: type[_Body]) -> Handler:
        return command_route(runtime, action, model, limits=limits, command_wait_s=command_wait_s)

    app.router.add_get("/api/audit", get_audit)
    app.router.add_post("/api/runs/{id}/approve", route("approve", ApproveBody))
    app.router.add_post("/api/runs/{id}/deny", route("deny", DenyBody))
    app.router.add_post("/api/runs/{id}/cancel", route("cancel", CancelBody))


def command_route(
    runtime: Runtime,
    action: str,
    model: type[CommandBody],
    *,
    limits: Limits = LIMITS,
    command_wait_s: float = COMMAND_WAIT_S,
    text_of: TextOf | None = None,
) -> Handler:
    """The handler of ``POST /api/runs/{id}/<action>`` (see the module docstring): the command
    text is ``text_of(id, body)`` when given (it takes no free text), else ``<action> <id> …``."""
    auth = runtime.fleet.auth if runtime.fleet is not None else None

    async def route(request: web.Request) -> web.Response:
        principal = principal_of(auth, request)
        run = _run_id(request.match_info["id"], "id")
        key = _idempotency_key(request)
        body = _body(await read_body(request, limits), model)
        text = None if text_of is None else (await text_of(run, body), None)
        return await _command(runtime, principal, action, run, body, key, command_wait_s, text)

    return route


def _text(action: str, run: str, body: _Body) -> tuple[str, str | None]:
    """The command text of the route, and the body field its free text came from."""
    match body:
        case ApproveBody(comment=comment) if comment:
            return command_text(action, run, free=comment), "comment"
        case DenyBody(reason=reason):
            return command_text(action, run, free=reason), "reason"
    return command_text(action, run), None


async def _command(
    runtime: Runtime,
    principal: Principal,
    action: str,
    run: str,
    body: _Body,
    key: str | None,
    wait_s: float,
    resolved: tuple[str, str | None] | None = None,
) -> web.Response:
    text, free = resolved or _text(action, run, body)
    sub = Submission(
        edge="api",
        principal=principal.name,
        user=body.user or principal.name,
        text=text,
        action=action,
        run=run,
        # the run id is already checked: what the grammar refuses is the free text (or the length)
        field=free or "id",
        key=key,
        note={"cancel_reason": body.reason} if isinstance(body, CancelBody) and body.reason else {},
    )
    try:
        done = await submit(sub, runtime.bus, runtime.store.audit, runtime.clock.now(), wait_s)
    except Ungrammatical as exc:
        return web.json_response({"error": exc.message, "field": exc.field, "usage": exc.usage}, status=400)
    except BadCommand as exc:  # the catalog's limits (user, text length)
        return error_reply(400, exc.message, exc.field)
    if done.entry is None:
        return web.json_response({"id": done.id, "status": "accepted"}, status=202)
    if done.other_text:
        return error_reply(
            422, "this Idempotency-Key was already used for another command", IDEMPOTENCY_HEADER
        )
    outcome = done.outcome or "error"
    return web.json_response(
        {"id": done.id, "outcome": outcome, "reply": done.entry.get("reply"), "entry": done.entry},
        status=OUTCOME_STATUS.get(outcome, 502),
    )
