"""The aiohttp server of ``upshift serve`` (and of the demo): CloudEvents ingress and the
manifest's ``http`` functions, in front of a :class:`shared.runtime.host.Runtime`.

Routes: ``POST /events`` (CloudEvents, binary or structured mode; strict — an unknown attribute
or data field is refused), ``GET /healthz``, and one route per ``http`` trigger in the manifest.
``POST /events`` answers 202 once the event is durable on the bus (``duplicate`` says it was
already there). Bad input answers 4xx with a JSON body naming the problem (``{"error": ...,
"field": ...}``) and publishes nothing; an unexpected failure answers 500 with no traceback (it
is logged, redacted). Bodies over 1 MiB are refused (413).

``POST /events`` requires ``Authorization: Bearer <token>`` (the fleet file's ``auth.tokens``;
:mod:`shared.runtime.auth`): 401 with ``WWW-Authenticate`` without it or with a wrong token,
before the body is read; 403 for a type the token may not publish or an internal type
(:mod:`shared.domain.access`). Nothing is published on either. With no tokens configured every
request is refused, and :func:`build_app` logs a warning saying so.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from events.codec import BadEvent, from_http_request
from shared.domain.access import authorize_publish
from shared.log import get_logger
from shared.runtime.auth import Unauthenticated, authenticate, ingress_warnings
from shared.runtime.function import HttpRequest
from shared.runtime.host import Runtime

__all__ = ["MAX_BODY", "build_app"]

MAX_BODY = 1 << 20
log = get_logger("upshift.serve")


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    body = {"error": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


@web.middleware
async def _no_tracebacks(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.exception("unhandled error", path=request.path, error_type=type(exc).__name__)
        return _error(500, "internal error")


def build_app(runtime: Runtime) -> web.Application:
    """The routes above, bound to ``runtime`` (which the caller starts and stops)."""
    app = web.Application(middlewares=[_no_tracebacks], client_max_size=MAX_BODY)
    auth = runtime.fleet.auth if runtime.fleet is not None else None
    hook = any(path == "/hooks/release" for bound in runtime.functions.values() for _, path in bound.http)
    for warning in ingress_warnings(runtime.fleet, release_hook=hook):
        log.warning(warning)

    async def post_events(request: web.Request) -> web.Response:
        try:
            principal = authenticate(auth, request.headers)
        except Unauthenticated as exc:
            log.info("ingress refused", status=401, reason=exc.message)
            reply = _error(401, exc.message, "Authorization")
            reply.headers["WWW-Authenticate"] = exc.www_authenticate
            return reply
        body = await request.read()
        try:
            event = from_http_request(dict(request.headers), body, strict=True)
        except BadEvent as exc:
            return _error(400, exc.message, exc.field or None)
        denied = authorize_publish(principal, event.type)
        if denied is not None:
            log.info("ingress refused", status=403, principal=principal.name, event_type=event.type)
            return _error(403, denied.message, denied.field)
        fresh = await runtime.bus.publish(event)
        return web.json_response({"id": event.id, "type": event.type, "duplicate": not fresh}, status=202)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "bus": runtime.bus.url.split("?")[0], "functions": sorted(runtime.functions)}
        )

    app.router.add_post("/events", post_events)
    app.router.add_get("/healthz", healthz)
    for name, bound in runtime.functions.items():
        for method, path in bound.http:
            app.router.add_route(method, path, _http_route(runtime, name))
    return app


def _http_route(runtime: Runtime, name: str) -> Handler:
    async def route(request: web.Request) -> web.Response:
        req = HttpRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            query=dict(request.query),
            body=await request.read(),
        )
        reply = await runtime.call_http(name, req)
        return web.json_response(reply.body, status=reply.status)

    return route
