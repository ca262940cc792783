"""The dashboard's JSON API: every page's view as JSON, the pause/resume of a run, the OpenAPI document.

Reads (any role, viewer included; a bearer token of the fleet's ``auth.tokens``,
:func:`shared.runtime.edge.principal_of`: 401 with ``WWW-Authenticate`` without one or with a
wrong one), each answering the model of :mod:`shared.dashboard.views` as JSON:

* ``GET /api/runs?state=&kind=&window=&wave=&target=&page=&per_page=`` → :class:`RunsPage`;
* ``GET /api/runs/{id}`` → :class:`RunDetail` (its ``actions`` narrowed to what the token's role
  allows, :func:`~shared.dashboard.views.allowed_actions`); 400 for an id not shaped like
  :data:`shared.domain.commands.RUN_ID`, 404 for an unknown run;
* ``GET /api/fleet[?live=true]`` → :class:`FleetView` (``live``: with the vendors' own answer,
  :mod:`shared.dashboard.live`); ``GET /api/approvals`` → :class:`ApprovalsView`;
* ``GET /api/calendar?days=&tz=`` → :class:`CalendarView` (``days`` 1…31, ``tz`` IANA).

A parameter the route does not take, or a bad value (an unknown state, kind or window, a page
that is no whole number, ``per_page`` over 200, …) is 400 ``{"error", "field"}`` naming it
(:func:`~shared.dashboard.views.runs_query`, :func:`~shared.dashboard.views.calendar_query`).

Control: ``POST /api/runs/{id}/pause`` and ``/resume`` ``{"user"?}`` are the chat commands
``pause <target>`` / ``resume <target>`` of the run's target (404 for an unknown run), through
:func:`shared.runtime.api.command_route` — the same bearer check, ``Idempotency-Key``, strict
bounded body, ``chat.command`` and wait for its audit entry as approve/deny/cancel; whether the
token may is decided by ``chat_command`` (403 with its reply when not).

``GET /api/openapi.json`` (no auth) is :func:`shared.dashboard.openapi.openapi_document`, built
once per app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from shared.dashboard.live import live_flag, looks_of
from shared.dashboard.openapi import openapi_document
from shared.dashboard.views import (
    BadQuery,
    allowed_actions,
    approvals_view,
    calendar_query,
    calendar_view,
    fleet_view,
    run_view,
    runs_query,
    runs_view,
)
from shared.domain.access import Principal
from shared.domain.commands import RUN_ID
from shared.domain.fleet import Fleet
from shared.engine.chatops.submit import command_text
from shared.limits import LIMITS, Limits
from shared.runtime.api import COMMAND_WAIT_S, CommandBody, command_route
from shared.runtime.edge import Refused, error_reply, principal_of
from shared.runtime.host import Runtime

__all__ = ["add_dashboard_api"]

Read = Callable[[web.Request, Principal, Fleet], Awaitable[BaseModel]]


def _json(model: BaseModel) -> web.Response:
    return web.Response(text=model.model_dump_json(), content_type="application/json")


def _no_parameters(query: Mapping[str, str]) -> None:
    if query:
        names = ", ".join(sorted(query))
        raise Refused(error_reply(400, f"unknown parameter(s): {names}", names))


def add_dashboard_api(
    app: web.Application, runtime: Runtime, *, limits: Limits = LIMITS, command_wait_s: float = COMMAND_WAIT_S
) -> None:
    """Add the routes above to ``app``, bound to ``runtime`` (its fleet, store and clock)."""
    auth = runtime.fleet.auth if runtime.fleet is not None else None
    store = runtime.store

    def reading(read: Read) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            principal = principal_of(auth, request)
            fleet = runtime.fleet
            if fleet is None:  # (no fleet: no tokens either, so principal_of refused already)
                return error_reply(503, "upshift serve runs without a fleet file")
            try:
                return _json(await read(request, principal, fleet))
            except BadQuery as exc:
                return error_reply(400, exc.message, exc.field)

        return route

    async def runs(request: web.Request, _: Principal, fleet: Fleet) -> BaseModel:
        return await runs_view(store, fleet, runtime.clock.now(), **runs_query(fleet, request.query))

    async def run(request: web.Request, principal: Principal, fleet: Fleet) -> BaseModel:
        rid = request.match_info["id"]
        if not RUN_ID.fullmatch(rid):
            raise BadQuery("id", f"{rid[:80]!r} is not a run id (like 'r0123456789abcde')")
        _no_parameters(request.query)
        detail = await run_view(store, fleet, runtime.clock.now(), rid)
        if detail is None:
            raise Refused(error_reply(404, f"there is no run {rid!r}", "id"))
        return detail.model_copy(update={"actions": allowed_actions(fleet, principal, detail)})

    looks = looks_of(app, runtime)

    async def fleet_(request: web.Request, _: Principal, fleet: Fleet) -> BaseModel:
        _no_parameters({k: v for k, v in request.query.items() if k != "live"})
        live = live_flag(request.query.get("live"))
        if live is None:
            raise BadQuery("live", "live is true or false")
        return await fleet_view(store, fleet, runtime.clock.now(), await looks.get(fleet) if live else None)

    async def calendar(request: web.Request, _: Principal, fleet: Fleet) -> BaseModel:
        return await calendar_view(store, fleet, runtime.clock.now(), **calendar_query(request.query))

    async def approvals(request: web.Request, _: Principal, fleet: Fleet) -> BaseModel:
        _no_parameters(request.query)
        return await approvals_view(store, fleet, runtime.clock.now())

    def scope_command(action: str) -> Callable[[str, CommandBody], Awaitable[str]]:
        async def text_of(rid: str, _: CommandBody) -> str:
            found = await store.ledger.run(rid)
            if found is None or not found.get("target"):
                raise Refused(error_reply(404, f"there is no run {rid!r}", "id"))
            return command_text(action, rid, target=str(found["target"]))

        return text_of

    document: dict[str, Any] = {}

    async def openapi(_: web.Request) -> web.Response:
        if not document:
            document.update(openapi_document())
        return web.json_response(document)

    app.router.add_get("/api/runs", reading(runs))
    app.router.add_get("/api/runs/{id}", reading(run))
    app.router.add_get("/api/fleet", reading(fleet_))
    app.router.add_get("/api/calendar", reading(calendar))
    app.router.add_get("/api/approvals", reading(approvals))
    for action in ("pause", "resume"):
        handler = command_route(
            runtime,
            action,
            CommandBody,
            limits=limits,
            command_wait_s=command_wait_s,
            text_of=scope_command(action),
        )
        app.router.add_post(f"/api/runs/{{id}}/{action}", handler)
    app.router.add_get("/api/openapi.json", openapi)
