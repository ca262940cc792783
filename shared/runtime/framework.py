"""The functions-framework targets: one per manifest function, built on first access.

This is the runtime for deploying one function on its own (Cloud Run functions, or locally)::

    functions-framework --source shared/runtime/framework.py --target echo --signature-type cloudevent

(or ``functions_framework.aio.create_asgi_app(target="echo", source=...)``). functions-framework
asks this module for the attribute ``echo``; :func:`__getattr__` builds it from
``serverless.yml`` then: a ``functions_framework.aio.cloud_event`` target for
``event``/``schedule`` functions, an ``aio.http`` target for ``http`` ones. Only the named
function's module is imported, which keeps a deployed function's cold start small
(``tests/functions/test_cold_imports.py``; what the first event loads besides:
``tests/shared/test_cold_path.py``; the time: ``python -m bench.coldstart``).

Contract:

* the bus and store come from ``UPSHIFT_BUS`` (default: the embedded SQLite file), the manifest
  from ``UPSHIFT_MANIFEST``, the fleet (and so the cloud clients) from ``UPSHIFT_FLEET``; they
  are opened once per process, on the first call;
* a target publishes what the function emits *before* it answers 200, so the caller's retry (a
  Pub/Sub push, an HTTP client) is what redelivers on failure;
* a CloudEvent that does not validate answers 400 naming the field, and runs nothing.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# functions-framework's own (loaded before it imports this module); Upshift's modules are
# imported where they are used, in the functions below: so all of them load while __getattr__
# builds the target, with the collector paused (see _collector_paused).
import functions_framework.aio as ff
from cloudevents.http import CloudEvent
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from shared.bus import Bus
    from shared.clouds.registry import CloudClients
    from shared.domain.fleet import Fleet
    from shared.runtime.function import Context, UpshiftFunction
    from shared.store import Store

__all__: list[str] = []  # attributes are made on demand, one per manifest function


@dataclass(frozen=True)
class _Process:
    """What every target of this process shares, opened on the first call."""

    bus: Bus
    store: Store
    fleet: Fleet | None
    clouds: CloudClients | None


_process: _Process | None = None


async def _runtime_parts() -> _Process:
    """One bus, store, fleet and set of cloud clients per process, opened on first use."""
    global _process
    if _process is None:
        from shared.bus import DEFAULT_URL, open_bus
        from shared.store import open_store

        url = os.environ.get("UPSHIFT_BUS", DEFAULT_URL)
        fleet = clouds = None
        if os.environ.get("UPSHIFT_FLEET"):
            # imported here: a function deployed without a fleet never loads the vendor clients
            from shared.clouds.registry import CloudClients
            from shared.domain.fleet import load_fleet

            fleet = load_fleet(os.environ["UPSHIFT_FLEET"])
            clouds = CloudClients.from_fleet(fleet)
        bus, store = open_bus(url), open_store(url)
        await bus.start()
        await store.start()
        _process = _Process(bus, store, fleet, clouds)
    return _process


def _context(name: str, parts: _Process) -> Context:
    from shared.clock import Clock
    from shared.log import get_logger
    from shared.runtime.function import Context

    return Context(
        function=name,
        store=parts.store,
        clock=Clock(),
        log=get_logger(f"upshift.fn.{name}"),
        fleet=parts.fleet,
        clouds=parts.clouds,
    )


def _cloud_event_target(name: str, fn: UpshiftFunction) -> ff.CloudEventFunction:
    from events.codec import BadEvent, from_cloudevent
    from shared.bus import publish_all
    from shared.log import bind_event
    from shared.runtime.function import HttpReply

    async def target(cloud_event: CloudEvent) -> None:
        try:
            event = from_cloudevent(cloud_event)
        except BadEvent as exc:
            raise HTTPException(400, detail=str(exc)) from None
        parts = await _runtime_parts()
        with bind_event(event):
            out = await fn(event, _context(name, parts))
            if isinstance(out, HttpReply):
                raise TypeError(f"event function {name} must not return HttpReply")
            await publish_all(parts.bus, out)

    target.__name__ = name
    return ff.cloud_event(target)


def _http_target(name: str, fn: UpshiftFunction) -> ff.HTTPFunction:
    from shared.bus import publish_all
    from shared.runtime.function import HttpReply, HttpRequest

    async def target(request: Request) -> JSONResponse:
        req = HttpRequest(
            method=request.method,
            path=request.url.path,
            headers=dict(request.headers),
            query=dict(request.query_params),
            body=await request.body(),
        )
        parts = await _runtime_parts()
        reply = await fn(req, _context(name, parts))
        if not isinstance(reply, HttpReply):
            raise TypeError(f"http function {name} must return HttpReply")
        await publish_all(parts.bus, reply.events)
        return JSONResponse(reply.body, status_code=reply.status, headers=dict(reply.headers))

    target.__name__ = name
    return ff.http(target)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while the block builds a target, then what it built is frozen.

    Building a target (Upshift's modules, the manifest, the function's module) allocates thousands of objects and
    frees almost none, so the collector's passes over the whole heap (two full ones, ~40 ms of a
    cold start) found nothing. ``gc.freeze`` then puts everything made so far out of every future
    pass: the gc docs' advice for a process that forks workers without exec, as
    functions-framework's gunicorn does (copy-on-write pages stay shared, too).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()


def __getattr__(name: str) -> Any:
    # Any: a module attribute is whatever functions-framework is handed (a CloudEventFunction
    # or an HTTPFunction, by the manifest's trigger); mypy cannot know which from the name.
    if name.startswith("__"):
        raise AttributeError(name)
    with _collector_paused():
        from shared.runtime.manifest import DEFAULT_MANIFEST, load_manifest, resolve_function

        manifest = load_manifest(os.environ.get("UPSHIFT_MANIFEST", DEFAULT_MANIFEST), resolve=False)
        fdef = manifest.functions.get(name)
        if fdef is None:
            raise AttributeError(f"no function {name!r} in the manifest")
        fn = resolve_function(name, fdef)
        is_http = any(t.http is not None for t in fdef.events)
        made = (_http_target if is_http else _cloud_event_target)(name, fn)
    globals()[name] = made
    return made
