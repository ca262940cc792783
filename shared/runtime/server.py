"""The aiohttp server of ``upshift serve`` (and of the demo): CloudEvents ingress and the
manifest's ``http`` functions, in front of a :class:`shared.runtime.host.Runtime`.

Routes: ``POST /events`` (CloudEvents, binary or structured mode; strict — an unknown attribute
or data field is refused), ``GET /healthz``, and one route per ``http`` trigger in the manifest.
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
request is refused, and :func:`build_app` logs a warning saying so.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError, TransferEncodingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from events.codec import BadEvent, from_http_request
from shared.domain.access import authorize_publish
from shared.limits import LIMITS, Limits
from shared.log import get_logger
from shared.runtime.auth import Unauthenticated, authenticate, ingress_warnings
from shared.runtime.function import HttpRequest
from shared.runtime.host import Runtime

__all__ = ["MAX_BODY", "app_runner", "build_app"]

MAX_BODY = LIMITS.max_body
log = get_logger("upshift.serve")


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    body = {"error": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


class _BodyRefused(Exception):
    def __init__(self, reply: web.Response) -> None:
        self.reply = reply


async def _read_body(request: web.Request, limits: Limits) -> bytes:
    """The whole body, within ``limits.body_read_timeout_s``; what a client got wrong (or a client
    gone) is a :class:`_BodyRefused` carrying the 4xx, never a 500."""
    try:
        async with asyncio.timeout(limits.body_read_timeout_s):
            return await request.read()
    except TimeoutError:
        log.info("request body too slow", path=request.path, timeout_s=limits.body_read_timeout_s)
        reply = _error(408, f"the body did not arrive within {limits.body_read_timeout_s:g} s", "body")
        reply.force_close()
        raise _BodyRefused(reply) from None
    except (RequestPayloadError, HttpProcessingError) as exc:
        cause = exc.__cause__ if isinstance(exc, RequestPayloadError) else exc
        if isinstance(cause, ContentEncodingError):
            field, message = "Content-Encoding", "the body does not decode with its Content-Encoding"
        elif isinstance(cause, TransferEncodingError):
            field, message = "Transfer-Encoding", "malformed chunked body"
        else:
            field, message = "body", "malformed request body"
        log.info("request body refused", path=request.path, field=field, error_type=type(cause).__name__)
        reply = _error(400, message, field)
        reply.force_close()
        raise _BodyRefused(reply) from None
    except ConnectionError:
        log.info("client went away before sending the whole body", path=request.path)
        raise _BodyRefused(_error(400, "the connection closed before the body ended", "body")) from None
    except asyncio.CancelledError:
        # aiohttp cancels the handler when the client disconnects (or the server stops): not an error
        log.info(
            "request cancelled while its body was read (client gone or server stopping)", path=request.path
        )
        raise


@web.middleware
async def _no_tracebacks(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except _BodyRefused as refused:
        return refused.reply
    except Exception as exc:
        log.exception("unhandled error", path=request.path, error_type=type(exc).__name__)
        return _error(500, "internal error")


def build_app(runtime: Runtime, *, limits: Limits = LIMITS) -> web.Application:
    """The routes above, bound to ``runtime`` (which the caller starts and stops)."""
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
        try:
            principal = authenticate(auth, request.headers)
        except Unauthenticated as exc:
            log.info("ingress refused", status=401, reason=exc.message)
            reply = _error(401, exc.message, "Authorization")
            reply.headers["WWW-Authenticate"] = exc.www_authenticate
            return reply
        body = await _read_body(request, limits)
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
            body=await _read_body(request, limits),
        )
        reply = await runtime.call_http(name, req)
        return web.json_response(reply.body, status=reply.status, headers=dict(reply.headers))

    return route
