"""What every route of the ``upshift serve`` app shares: the JSON refusal, the bearer token and
the bounded body read.

* :func:`error_reply` is the one shape of a refusal: ``{"error": message, "field"?: name}``.
* :class:`Refused` carries such an answer out of a handler; the app's middleware returns it.
* :func:`principal_of` is the request's bearer token (:func:`shared.runtime.auth.authenticate`)
  or a :class:`Refused` 401 with ``WWW-Authenticate`` (field ``Authorization``) — checked before
  the body is read.
* :func:`read_body` reads the whole body within ``limits.body_read_timeout_s``; whatever the
  client got wrong (too slow: 408; a ``Content-Encoding`` that does not decode or broken chunked
  framing: 400 naming the header; gone mid-body: 400, logged at info without a traceback) is a
  :class:`Refused` 4xx — never a 500.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError, TransferEncodingError
from aiohttp.web_protocol import RequestPayloadError

from shared.domain.access import Principal
from shared.domain.fleet import Auth
from shared.limits import Limits
from shared.log import get_logger
from shared.runtime.auth import Unauthenticated, authenticate

__all__ = ["Refused", "error_reply", "principal_of", "read_body"]

log = get_logger("upshift.serve")


def error_reply(status: int, message: str, field: str | None = None) -> web.Response:
    """A refusal: ``status`` with ``{"error": message, "field": field}`` (no ``field`` when None)."""
    body = {"error": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


class Refused(Exception):
    """A request refused before its handler could answer; :attr:`reply` is the 4xx to answer."""

    def __init__(self, reply: web.Response) -> None:
        self.reply = reply


def principal_of(auth: Auth | None, request: web.Request) -> Principal:
    """Who the request's ``Authorization: Bearer`` token is; :class:`Refused` 401 otherwise."""
    try:
        return authenticate(auth, request.headers)
    except Unauthenticated as exc:
        log.info("ingress refused", path=request.path, status=401, reason=exc.message)
        reply = error_reply(401, exc.message, "Authorization")
        reply.headers["WWW-Authenticate"] = exc.www_authenticate
        raise Refused(reply) from None


async def read_body(request: web.Request, limits: Limits) -> bytes:
    """The whole body, within ``limits.body_read_timeout_s``; what a client got wrong (or a client
    gone) is a :class:`Refused` carrying the 4xx, never a 500."""
    try:
        async with asyncio.timeout(limits.body_read_timeout_s):
            return await request.read()
    except TimeoutError:
        log.info("request body too slow", path=request.path, timeout_s=limits.body_read_timeout_s)
        reply = error_reply(408, f"the body did not arrive within {limits.body_read_timeout_s:g} s", "body")
        reply.force_close()
        raise Refused(reply) from None
    except (RequestPayloadError, HttpProcessingError) as exc:
        cause = exc.__cause__ if isinstance(exc, RequestPayloadError) else exc
        if isinstance(cause, ContentEncodingError):
            field, message = "Content-Encoding", "the body does not decode with its Content-Encoding"
        elif isinstance(cause, TransferEncodingError):
            field, message = "Transfer-Encoding", "malformed chunked body"
        else:
            field, message = "body", "malformed request body"
        log.info("request body refused", path=request.path, field=field, error_type=type(cause).__name__)
        reply = error_reply(400, message, field)
        reply.force_close()
        raise Refused(reply) from None
    except ConnectionError:
        log.info("client went away before sending the whole body", path=request.path)
        raise Refused(error_reply(400, "the connection closed before the body ended", "body")) from None
    except asyncio.CancelledError:
        # aiohttp cancels the handler when the client disconnects (or the server stops): not an error
        log.info(
            "request cancelled while its body was read (client gone or server stopping)", path=request.path
        )
        raise
