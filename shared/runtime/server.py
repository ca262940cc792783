"""The aiohttp server of ``upshift serve`` (and of the demo): CloudEvents ingress and the
manifest's ``http`` functions, in front of a :class:`shared.runtime.host.Runtime`.

Routes: ``POST /events`` (CloudEvents, binary or structured mode; strict — an unknown attribute
or data field is refused), ``GET /healthz``, ``GET /metrics`` (:mod:`shared.runtime.metrics`),
the HTTP API (``GET /api/audit``, ``POST /api/runs/{id}/approve|deny|cancel``:
:mod:`shared.runtime.api`), the dashboard's JSON API (``/api/runs``, ``/api/runs/{id}``,
``/api/fleet``, ``/api/calendar``, ``/api/approvals``, ``POST /api/runs/{id}/pause|resume``,
``/api/openapi.json``: :mod:`shared.dashboard.api`), and one route per ``http`` trigger in the manifest.
``POST /events`` answers 202 once the event is durable on the bus (``duplicate`` says it was
already there). Bad input answers 4xx with a JSON body naming the problem (``{"error": ...,
"field": ...}``) and publishes nothing; an unexpected failure answers 500 with no traceback (it
is logged, redacted). Bodies over 1 MiB are refused (413).

The limits (:mod:`shared.limits`): a body must arrive within ``body_read_timeout_s`` of its
headers (else 408, ``field: body``) and a connection with no request in progress is closed after
``idle_timeout_s`` (slow or stalled clients are not kept open); header lines, header count and
body size are bounded; a body whose ``Content-Encoding`` does not decode, or whose chunked
framing is broken, is 400 naming the header; a client gone mid-body is logged at info, without a
traceback. :func:`app_runner` is the ``web.AppRunner`` every host of this app uses (the shutdown
timeout on SIGTERM).

``POST /events`` requires ``Authorization: Bearer <token>`` (the fleet file's ``auth.tokens``;
:mod:`shared.runtime.auth`): 401 with ``WWW-Authenticate`` without it or with a wrong token,
before the body is read; 403 for a type the token may not publish or an internal type
(:mod:`shared.domain.access`). Nothing is published on either. With no tokens configured every
request is refused, and :func:`build_app` logs a warning saying so. Every accepted event carries
``via=token:<name>`` (the token's name), overwriting any ``via`` the sender gave: a chat identity
is trusted only from the edge that verified it, never from a bot's claim.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from events.codec import BadEvent, from_http_request
from shared.dashboard.api import add_dashboard_api
from shared.dashboard.pages import add_dashboard_routes
from shared.domain.access import authorize_publish
from shared.limits import LIMITS, Limits
from shared.log import get_logger
from shared.runtime.api import COMMAND_WAIT_S, add_api_routes
from shared.runtime.auth import ingress_warnings
from shared.runtime.edge import Refused, error_reply, principal_of, read_body
from shared.runtime.function import HttpRequest
from shared.runtime.host import Runtime
from shared.runtime.metrics import add_metrics_route

__all__ = ["MAX_BODY", "app_runner", "build_app"]

MAX_BODY = LIMITS.max_body
log = get_logger("upshift.serve")


@web.middleware
async def _no_tracebacks(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Refused as refused:
        return refused.reply
    except Exception as exc:
        log.exception("unhandled error", path=request.path, error_type=type(exc).__name__)
        return error_reply(500, "internal error")


def build_app(
    runtime: Runtime, *, limits: Limits = LIMITS, command_wait_s: float = COMMAND_WAIT_S
) -> web.Application:
    """The routes above, bound to ``runtime`` (which the caller starts and stops);
    ``command_wait_s`` is how long an API command waits for its audit entry."""
    app = web.Application(
        middlewares=[_no_tracebacks],
        client_max_size=limits.max_body,
        handler_args={
            "keepalive_timeout": limits.idle_timeout_s,
            "max_line_size": limits.max_header_line,
            "max_field_size": limits.max_header_line,
            "max_headers": limits.max_headers,
        },
    )
    auth = runtime.fleet.auth if runtime.fleet is not None else None
    hook = any(path == "/hooks/release" for bound in runtime.functions.values() for _, path in bound.http)
    for warning in ingress_warnings(runtime.fleet, release_hook=hook):
        log.warning(warning)

    async def post_events(request: web.Request) -> web.Response:
        principal = principal_of(auth, request)
        body = await read_body(request, limits)
        try:
            event = from_http_request(dict(request.headers), body, strict=True)
        except BadEvent as exc:
            return error_reply(400, exc.message, exc.field or None)
        denied = authorize_publish(principal, event.type)
        if denied is not None:
            log.info("ingress refused", status=403, principal=principal.name, event_type=event.type)
            return error_reply(403, denied.message, denied.field)
        # who published it is the token, whatever the sender claimed (a bot is not the Slack edge)
        event = event.model_copy(
            update={"extensions": {**event.extensions, "via": f"token:{principal.name}"}}
        )
        fresh = await runtime.bus.publish(event)
        return web.json_response({"id": event.id, "type": event.type, "duplicate": not fresh}, status=202)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "bus": runtime.bus.url.split("?")[0], "functions": sorted(runtime.functions)}
        )

    app.router.add_post("/events", post_events)
    app.router.add_get("/healthz", healthz)
    add_api_routes(app, runtime, limits=limits, command_wait_s=command_wait_s)
    add_dashboard_api(app, runtime, limits=limits, command_wait_s=command_wait_s)
    add_dashboard_routes(app, runtime, limits=limits, command_wait_s=command_wait_s)  # the HTML pages
    add_metrics_route(app, runtime)  # GET /metrics: open, or a bearer token (fleet metrics:)
    for name, bound in runtime.functions.items():
        for method, path in bound.http:
            app.router.add_route(method, path, _http_route(runtime, name, limits))
    return app


def app_runner(app: web.Application, *, handle_signals: bool = False) -> web.AppRunner:
    """The runner of :func:`build_app`'s app: no access log (ours is structured) and, on SIGTERM,
    in-flight requests get ``LIMITS.shutdown_timeout_s`` (aiohttp's default waits 60 s)."""
    return web.AppRunner(
        app, access_log=None, handle_signals=handle_signals, shutdown_timeout=LIMITS.shutdown_timeout_s
    )


def _http_route(runtime: Runtime, name: str, limits: Limits = LIMITS) -> Handler:
    async def route(request: web.Request) -> web.Response:
        req = HttpRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            query=dict(request.query),
            body=await read_body(request, limits),
        )
        reply = await runtime.call_http(name, req)
        return web.json_response(reply.body, status=reply.status, headers=dict(reply.headers))

    return route
