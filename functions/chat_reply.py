"""chat_reply: ``chat.reply`` → one POST of the command's result to its ``response_url``.

The body is Slack's (Mattermost takes the same): ``{"text", "response_type": "ephemeral" |
"in_channel", "replace_original"}``.

Where it may go: the URL is ``https``, or ``http`` to loopback only (``127.0.0.1``, ``::1``,
``localhost``: tests and the demo), carries no user info, and its ``host[:port]`` (a default
port left out) is in the platform's allow-list — ``fleet.chat.slack.response_hosts`` or
``fleet.chat.mattermost.response_hosts``. Anything else (another host, another platform, a
platform not configured) is not posted: logged, and the event is done — a retry would not change
the answer. A ``chat.reply`` can come from ``POST /events`` too, so this is what keeps Upshift
from POSTing wherever an event tells it. Redirects are not followed, for the same reason.

Delivery (like ``notify``): a reply delivered (2xx) or given up on (404/410: the ``response_url``
expired; a redirect) is recorded in the store (bucket :data:`BUCKET`, key the event id), and a
redelivery posts nothing. Any other status or a network error raises :class:`ReplyFailed` (a
``TransientError``) so the bus retries. A process dying between a 2xx and the record posts the
reply twice — chat tolerates that better than a lost result.

The URL is a bearer credential (Slack's: 30 minutes, 5 uses): never logged, only its host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp

from events.catalog import ChatReply
from events.envelope import Event
from shared.bus.base import Emitted
from shared.clouds.sessions import get_session
from shared.domain.fleet import Fleet
from shared.errors import Conflict, TransientError
from shared.runtime.function import Context, upshift_function

__all__ = ["BUCKET", "LOOPBACK", "ReplyFailed", "allowed", "chat_reply"]

BUCKET = "chat_replied"
#: Hosts plain ``http`` may name.
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_DEFAULT_PORT = {"https": 443, "http": 80}
_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)


class ReplyFailed(TransientError):
    """The chat platform did not take the reply (5xx, 429, unreachable): retried by the bus."""


@upshift_function
async def chat_reply(event: Event[ChatReply], ctx: Context) -> list[Emitted]:
    reply = event.data
    if await ctx.store.kv.get(BUCKET, event.id) is not None:
        return []
    host = allowed(ctx.fleet, reply.platform, reply.response_url)
    if host is None:
        ctx.log.warning(
            "chat reply not posted: its response_url is not an allowed host",
            platform=reply.platform,
            host=_host_only(reply.response_url),
            event_id=event.id,
        )
        return []
    body = {
        "text": reply.text,
        "response_type": "ephemeral" if reply.ephemeral else "in_channel",
        "replace_original": reply.replace_original,
    }
    try:
        async with get_session().post(
            reply.response_url, json=body, timeout=_TIMEOUT, allow_redirects=False
        ) as r:
            status = r.status
            wait = r.headers.get("Retry-After", "")
    except (aiohttp.ClientError, TimeoutError) as exc:
        # aiohttp puts the URL in its messages: the type only
        ctx.log.warning("chat reply: platform unreachable", host=host, error=type(exc).__name__)
        raise ReplyFailed(f"{host} unreachable ({type(exc).__name__})") from None
    if 200 <= status < 300:
        outcome = "delivered"
    elif status in (404, 410) or 300 <= status < 400:
        outcome = "given up"
        ctx.log.warning("chat reply given up: response_url expired or moved", host=host, status=status)
    else:
        ctx.log.warning("chat reply refused; retried", host=host, status=status)
        # 429: Slack says when to come back
        after = float(wait) if wait.isdigit() and status == 429 else None
        raise ReplyFailed(f"{host} answered {status}", retry_after=after)
    try:
        await ctx.store.kv.create(
            BUCKET, event.id, {"outcome": outcome, "status": status, "at": ctx.clock.now().isoformat()}
        )
    except Conflict:
        pass  # a concurrent redelivery recorded it first
    ctx.log.info("chat reply posted", host=host, status=status, outcome=outcome)
    return []


def allowed(fleet: Fleet | None, platform: str, url: str) -> str | None:
    """``host[:port]`` of ``url`` when a reply may be POSTed there (module docstring), else None."""
    chat = fleet.chat if fleet is not None else None
    config = (
        (chat.slack if platform == "slack" else chat.mattermost if platform == "mattermost" else None)
        if chat
        else None
    )
    if config is None:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number or out of range
        return None
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None:
        return None
    if parts.scheme == "http":
        if host not in LOOPBACK:
            return None
    elif parts.scheme != "https":
        return None
    named = host if port is None or port == _DEFAULT_PORT[parts.scheme] else f"{host}:{port}"
    hosts = {h.lower() for h in config.response_hosts}
    return named if named in hosts else None


def _host_only(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "?")[:253]
    except ValueError:
        return "?"
