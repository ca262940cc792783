"""functions-framework targets, one per manifest function, built on first access.

``functions-framework --source shared/runtime/framework.py --target echo`` (or
``functions_framework.aio.create_asgi_app(target="echo", source=...)``) asks this module for the
attribute ``echo``; :func:`__getattr__` builds it from ``serverless.yml`` then: a
``functions_framework.aio.cloud_event`` target for ``event``/``schedule`` functions, an
``aio.http`` target for ``http`` ones. Only the named function's module is imported, which
keeps a deployed function's cold start small.

The bus and store come from ``UPSHIFT_BUS`` (default: the embedded SQLite file); the manifest
from ``UPSHIFT_MANIFEST``; the fleet (and so the cloud clients) from ``UPSHIFT_FLEET``. A target publishes what the function emits before it answers 200,
so the caller's retry (a Pub/Sub push, an HTTP client) is what redelivers on failure.
"""

from __future__ import annotations

import os
from typing import Any

import functions_framework.aio as ff
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from events.codec import BadEvent, from_cloudevent
from shared.bus import DEFAULT_URL, open_bus, publish_all
from shared.log import bind_event, get_logger
from shared.runtime.function import HttpRequest, UpshiftFunction
from shared.runtime.manifest import DEFAULT_MANIFEST, load_manifest, resolve_handler
from shared.store import open_store

__all__: list[str] = []  # attributes are made on demand, one per manifest function

_state: dict[str, Any] = {}


async def _runtime_parts():
    """One bus, store, fleet and set of cloud clients per process, opened on first use."""
    if "bus" not in _state:
        url = os.environ.get("UPSHIFT_BUS", DEFAULT_URL)
        fleet = clouds = None
        if os.environ.get("UPSHIFT_FLEET"):
            from shared.clouds.registry import CloudClients
            from shared.domain.fleet import load_fleet

            fleet = load_fleet(os.environ["UPSHIFT_FLEET"])
            clouds = CloudClients.from_fleet(fleet)
        bus, store = open_bus(url), open_store(url)
        await bus.start()
        await store.start()
        _state.update(bus=bus, store=store, fleet=fleet, clouds=clouds)
    return _state["bus"], _state["store"]


def _context(name: str, store):
    from shared.clock import Clock
    from shared.runtime.function import Context

    return Context(
        function=name,
        store=store,
        clock=Clock(),
        log=get_logger(f"upshift.fn.{name}"),
        fleet=_state.get("fleet"),
        clouds=_state.get("clouds"),
    )


def _cloud_event_target(name: str, fn: UpshiftFunction):
    async def target(cloud_event) -> None:
        try:
            event = from_cloudevent(cloud_event)
        except BadEvent as exc:
            raise HTTPException(400, detail=str(exc)) from None
        bus, store = await _runtime_parts()
        with bind_event(event):
            await publish_all(bus, await fn(event, _context(name, store)))

    target.__name__ = name
    return ff.cloud_event(target)


def _http_target(name: str, fn: UpshiftFunction):
    async def target(request: Request):
        req = HttpRequest(
            method=request.method,
            path=request.url.path,
            headers=dict(request.headers),
            query=dict(request.query_params),
            body=await request.body(),
        )
        bus, store = await _runtime_parts()
        reply = await fn(req, _context(name, store))
        await publish_all(bus, reply.events)
        return JSONResponse(reply.body, status_code=reply.status)

    target.__name__ = name
    return ff.http(target)


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    manifest = load_manifest(os.environ.get("UPSHIFT_MANIFEST", DEFAULT_MANIFEST), resolve=False)
    fdef = manifest.functions.get(name)
    if fdef is None:
        raise AttributeError(f"no function {name!r} in the manifest")
    fn = resolve_handler(fdef.handler)
    is_http = any(t.http is not None for t in fdef.events)
    made = (_http_target if is_http else _cloud_event_target)(name, fn)
    globals()[name] = made
    return made
