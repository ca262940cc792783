"""The simulator's aiohttp application: the five vendor services plus ``/_sim/*`` control routes.

Control routes (no auth, no faults; for tests and operators):

- ``GET  /_sim/stats``          ``{"calls": {endpoint: {target_id: n}}, "faults": ..., "auth_failures": ...}``
- ``POST /_sim/stats/reset``    zero the counters
- ``GET  /_sim/faults``         current fault specs
- ``POST /_sim/faults``         ``{"<service>.<operation>" | service | "*": FaultSpec | null}``;
  ``{"clear": true}`` clears all; an unknown key is a 400 naming it
- ``DELETE /_sim/faults``       clear all faults
- ``GET  /_sim/operations``     the operation names valid as fault keys, per service
- ``GET  /_sim/fleet``          targets with versions, outcome, busy flag, simulated now and speed
- ``POST /_sim/targets/{id}``   patch ``fail_next``, ``outcome`` (succeed|fail|stall), ``version``,
  ``versions``, ``job_seconds``
- ``POST /_sim/clock``          ``{"advance": seconds}`` jumps the simulated clock

Every response carries a ``Date`` header in the simulator's clock (see ``simulator.core``).
"""

from __future__ import annotations

import importlib
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.core import STATE, Outcome, SimState, install_date_header
from simulator.fleet import default_fleet, load_fleet

__all__ = ["VENDOR_MODULES", "build_app", "default_fleet", "load_fleet"]

#: Each module exposes ``register(app, state)``. simulator.huawei is built alongside; until it
#: exists the other services still run.
VENDOR_MODULES = ("simulator.huawei", "simulator.ocp", "simulator.ncloud")


class _TargetPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_next: bool | None = None
    outcome: Outcome | None = None
    version: str | None = None
    versions: list[str] | None = None
    job_seconds: float | None = Field(None, ge=0)


class _ClockPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance: float = Field(ge=0)


def _bad_request(exc: Exception) -> web.Response:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        message = f"{where}: {err['msg']}"
    else:
        message = str(exc)
    return web.json_response({"error": message}, status=400)


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "body is not JSON"}', content_type="application/json"
        ) from None


def _target_view(state: SimState, target_id: str) -> dict[str, Any]:
    t = state.targets[target_id]
    state.refresh(t)
    return {
        "name": t.name,
        "kind": t.kind,
        "id": t.id,
        "version": t.version,
        "versions": list(t.versions),
        "job_seconds": t.job_seconds,
        "fail_next": t.fail_next,
        "outcome": t.outcome,
        "busy": state.active_job(t) is not None,
        "extra": t.extra,
    }


def _control_routes(app: web.Application, state: SimState) -> None:
    async def stats(_: web.Request) -> web.Response:
        return web.json_response(state.stats.snapshot())

    async def stats_reset(_: web.Request) -> web.Response:
        state.stats.reset()
        return web.json_response(state.stats.snapshot())

    async def faults_get(_: web.Request) -> web.Response:
        return web.json_response(state.faults.snapshot())

    async def faults_post(request: web.Request) -> web.Response:
        doc = await _json(request)
        if not isinstance(doc, dict):
            return _bad_request(ValueError("body must be a JSON object {service: spec | null}"))
        if doc.pop("clear", False):
            state.faults.clear()
        try:
            state.faults.update(doc)
        except (ValueError, ValidationError) as exc:
            return _bad_request(exc)
        return web.json_response(state.faults.snapshot())

    async def faults_delete(_: web.Request) -> web.Response:
        state.faults.clear()
        return web.json_response({})

    async def operations(_: web.Request) -> web.Response:
        by_service: dict[str, list[str]] = {}
        for op in sorted(state.faults.operations):
            by_service.setdefault(op.partition(".")[0], []).append(op)
        return web.json_response(by_service)

    async def fleet(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "now": state.clock.now(),
                "speed": state.clock.speed,
                "targets": [_target_view(state, tid) for tid in state.targets],
            }
        )

    async def target_patch(request: web.Request) -> web.Response:
        target_id = request.match_info["id"]
        if target_id not in state.targets:
            return web.json_response({"error": f"no target with id {target_id!r}"}, status=404)
        try:
            patch = _TargetPatch.model_validate(await _json(request))
        except ValidationError as exc:
            return _bad_request(exc)
        target = state.targets[target_id]
        for key, value in patch.model_dump(exclude_none=True).items():
            setattr(target, key, value)
        return web.json_response(_target_view(state, target_id))

    async def clock(request: web.Request) -> web.Response:
        try:
            patch = _ClockPatch.model_validate(await _json(request))
        except ValidationError as exc:
            return _bad_request(exc)
        state.clock.advance(patch.advance)
        return web.json_response({"now": state.clock.now(), "speed": state.clock.speed})

    app.router.add_get("/_sim/stats", stats)
    app.router.add_post("/_sim/stats/reset", stats_reset)
    app.router.add_get("/_sim/faults", faults_get)
    app.router.add_post("/_sim/faults", faults_post)
    app.router.add_delete("/_sim/faults", faults_delete)
    app.router.add_get("/_sim/operations", operations)
    app.router.add_get("/_sim/fleet", fleet)
    app.router.add_post("/_sim/targets/{id}", target_patch)
    app.router.add_post("/_sim/clock", clock)


def _vendor_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # Only a module that does not exist yet is tolerated; a broken one must fail loudly.
        if exc.name == name:
            return None
        raise


def build_app(state: SimState) -> web.Application:
    """The whole simulator for ``state``: every vendor service that is present, plus ``/_sim``."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[STATE] = state
    for name in VENDOR_MODULES:
        module = _vendor_module(name)
        register = getattr(module, "register", None)  # a package still being built may lack it
        if register is not None:
            register(app, state)
    for key in state.faults.specs:  # faults set before the routes existed: now the names are known
        state.faults.check_key(key)
    _control_routes(app, state)
    install_date_header(app, state)
    return app
