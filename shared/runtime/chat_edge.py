"""What the chat edges (``functions/chat_slack.py``, ``functions/chat_mattermost.py``) share:
form decoding, Slack's signature and replay check, Mattermost's token check, the published
``chat.command`` and the Slack-style "working on it" answer.

An edge only verifies, parses and publishes: the command runs later, in ``chat_command``, which
posts its result to the ``response_url`` (``chat.reply`` → ``chat_reply``). So an edge answers
within Slack's 3 seconds and never executes anything twice.

Contract of the Slack requests (:func:`slack_edge`), checked in this order; every refusal is
``{"error", "field"}`` and publishes nothing:

* 404 when the fleet has no ``chat.slack`` block; 503 when its ``signing_secret_env`` is unset
  (never accept unsigned);
* 401 (``field``: the header) — no ``X-Slack-Request-Timestamp`` / ``X-Slack-Signature``, a
  timestamp that is not a decimal integer, one more than 5 minutes from ``ctx.clock`` either way,
  a signature not of the ``v0=<64 hex>`` form or not matching (checked by
  ``slack_sdk.signature.SignatureVerifier`` on a clock over ``ctx.clock``), a body that is not
  UTF-8 (it cannot be verified), and a **replay**: a signature already seen (store bucket
  :data:`SEEN`, key a hash of the signature, written with ``create``);
* except that a replay carrying ``X-Slack-Retry-Num`` is Slack retrying: 200, and the same event
  is offered again (same id: the bus drops the copy; if the first attempt died before it
  published, this one publishes it — nothing lost, nothing executed twice). A retry with a fresh
  signature is a new request with the same ``trigger_id``, hence the same event id: dropped too;
* 400 a malformed form (not UTF-8 after percent-decoding, a field given twice, too many fields),
  a missing or oversized field (named as Slack names it);
* 403 a team not in ``chat.slack.teams`` (when that list is not empty).

Mattermost (:func:`verify_mattermost`): the slash command's token, sent both as
``Authorization: Token <t>`` and as the form field ``token``; whichever is present must match
(compared in constant time over digests), at least one must be. Mattermost does not sign or
timestamp its requests, so there is no replay check beyond the deterministic event id (whoever
holds the token can forge any request anyway).

Never in a log line or an answer: the secret, the token, the ``response_url`` (a bearer
credential for 30 minutes) or the body.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import ValidationError
from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier

from events import T
from events.catalog import ChatCommand
from events.envelope import Event, consequence_id
from shared.clock import Clock
from shared.clouds.credentials import read_secret
from shared.domain.chat import SlackChat, escape_mrkdwn
from shared.domain.commands import MAX_TEXT
from shared.domain.releases import Refused
from shared.errors import ConfigError, Conflict
from shared.runtime.function import Context, HttpReply, HttpRequest

__all__ = [
    "MAX_FIELDS",
    "SEEN",
    "SIGNATURE",
    "TIMESTAMP",
    "WINDOW_S",
    "Offer",
    "command_event",
    "decode_form",
    "need",
    "new_command",
    "refusal",
    "slack_edge",
    "slash_command",
    "too_long",
    "verify_mattermost",
    "working_on_it",
]

#: Store bucket of the Slack signatures already accepted (key: a hash of the signature).
SEEN = "chat_seen"
#: Slack's replay window: a timestamp further than this from now (either way) is refused.
WINDOW_S = 60 * 5
#: More fields than any chat platform sends; a form with more is refused before it is read.
MAX_FIELDS = 64
TIMESTAMP = "X-Slack-Request-Timestamp"
SIGNATURE = "X-Slack-Signature"
RETRY = "x-slack-retry-num"
_DIGITS = re.compile(r"^[0-9]{1,12}$")  # int() would also take "+1", " 1", "1_0" and non-ASCII digits
_SIGNATURE_SHAPE = re.compile(r"^v0=[0-9a-f]{64}$")  # compare_digest raises on non-ASCII str


@dataclass(frozen=True)
class Offer:
    """What a request comes to: the answer, at most one event, and the team to check."""

    body: dict[str, Any]
    event: Event[ChatCommand] | None = None
    #: The workspace the request came from (checked against ``chat.slack.teams``), and where.
    team: str | None = None
    team_field: str = "team_id"


# -- form ----------------------------------------------------------------------------------------


def decode_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as one value per name (400 naming what is wrong)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, errors="strict", max_num_fields=MAX_FIELDS
        )
    except UnicodeDecodeError:
        raise Refused(400, "the form is not UTF-8", "body") from None
    except ValueError:  # max_num_fields
        raise Refused(400, f"more than {MAX_FIELDS} form fields", "body") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise Refused(400, "given more than once", name[:64])
        form[name] = value
    return form


def need(form: Mapping[str, str], name: str) -> str:
    """A required field, non-empty and free of control characters (400 naming it otherwise)."""
    value = form.get(name, "")
    if not value:
        raise Refused(400, "missing", name)
    return _plain(value, name)


def _plain(value: str, field: str) -> str:
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise Refused(400, "control characters are not accepted", field)
    return value


# -- the command ---------------------------------------------------------------------------------


def too_long(text: str) -> Offer | None:
    """The answer to a command longer than a ``chat.command`` may carry, publishing nothing.

    A 200 with the reason rather than a 400: Slack shows any other status as a bare error
    ("failed with the error ...") the user cannot act on."""
    if len(text) <= MAX_TEXT:
        return None
    return Offer(
        {
            "response_type": "ephemeral",
            "text": f"That command is {len(text)} characters long; Upshift takes at most {MAX_TEXT}.",
        }
    )


def new_command(fields: Mapping[str, str], **values: Any) -> ChatCommand:
    """``ChatCommand(**values)``; a value it refuses is a 400 naming the request's own field
    (``fields``: ChatCommand field → the name the platform sent it under)."""
    for name, value in values.items():
        if isinstance(value, str) and name != "text":  # the command parser answers for the text
            _plain(value, fields.get(name, name))
    try:
        return ChatCommand(**values)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        raise Refused(400, err["msg"], fields.get(name, name or "body")) from None


def slash_command(
    fields: Mapping[str, str],
    platform: Literal["slack", "mattermost"],
    form: Mapping[str, str],
    *,
    team: str,
    user: str,
    text: str,
    trigger: str | None,
) -> ChatCommand:
    """The command of a slash-command form (Slack's and Mattermost's send the same fields:
    ``user_name``, ``channel_id``, ``response_url``), through :func:`new_command`."""
    return new_command(
        fields,
        platform=platform,
        team=team,
        user=user,
        user_name=form.get("user_name") or None,
        channel=form.get("channel_id", ""),
        text=text,
        response_url=form.get("response_url") or None,
        trigger_id=trigger,
    )


def command_event(
    command: ChatCommand, key: tuple[object, ...], via: str, ctx: Context
) -> Event[ChatCommand]:
    """The ``chat.command`` to publish: id from ``key`` (a retry is the same event), ``via`` the edge
    (``chat_command`` trusts a platform identity only from its own edge)."""
    return Event(
        type=T.CHAT_COMMAND,
        id=consequence_id(*key),
        time=ctx.clock.now(),
        subject=command.user,
        data=command,
        extensions={"via": via},
    )


def working_on_it(text: str, *, mrkdwn: bool) -> dict[str, Any]:
    """The immediate, ephemeral answer (Slack's shape; Mattermost takes it as is). Backticks in
    the text would end the code span early; inside one, Markdown (Mattermost) shows ``<`` as is."""
    shown = text.replace("`", "'")
    return {
        "response_type": "ephemeral",
        "text": f"Working on it: `{escape_mrkdwn(shown) if mrkdwn else shown}`",
    }


def refusal(ctx: Context, exc: Refused) -> HttpReply:
    ctx.log.info("chat request refused", status=exc.status, reason=exc.error, field=exc.field)
    return HttpReply(exc.status, exc.body())


def _secret(ctx: Context, env: str) -> str:
    try:
        return read_secret(env).get_secret_value()
    except ConfigError:
        ctx.log.error("chat secret is not set", env=env)
        raise Refused(
            503, f"the server's chat secret is not configured (environment variable {env})"
        ) from None


# -- Slack ---------------------------------------------------------------------------------------


class _DomainClock(SlackClock):
    """slack_sdk's clock over the function's (a FakeClock in tests, the sped-up one in the demo)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.timestamp()


async def slack_edge(
    request: HttpRequest, ctx: Context, parse: Callable[[dict[str, str]], Awaitable[Offer] | Offer]
) -> HttpReply:
    """Verify a Slack request, decode its form, ``parse`` it into an :class:`Offer`, refuse a
    foreign team or a replay, publish (module docstring)."""
    try:
        slack = ctx.fleet.chat.slack if ctx.fleet is not None else None
        if slack is None:
            raise Refused(404, "Slack is not configured on this server (fleet file: chat.slack)")
        headers = {k.lower(): v for k, v in request.headers.items()}
        signature = _verify_slack(ctx, _secret(ctx, slack.signing_secret_env), headers, request.body)
        got = parse(decode_form(request.body))
        offer = got if isinstance(got, Offer) else await got
        _check_team(slack, offer)
        if offer.event is not None and not await _first_sight(ctx, signature):
            if not headers.get(RETRY):
                raise Refused(401, "this request was already received (replayed)", SIGNATURE)
            ctx.log.info("slack retry re-offered", event_id=offer.event.id, retry=headers[RETRY][:8])
    except Refused as exc:
        return refusal(ctx, exc)
    if offer.event is None:
        return HttpReply(200, offer.body)
    ctx.log.info("chat command received", platform="slack", event_id=offer.event.id, team=offer.team)
    return HttpReply(200, offer.body, [offer.event])


def _verify_slack(ctx: Context, secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """The request's signature, once it is verified (401 naming the header otherwise)."""
    timestamp = headers.get(TIMESTAMP.lower())
    signature = headers.get(SIGNATURE.lower())
    if not timestamp:
        raise Refused(401, "unsigned request: no timestamp", TIMESTAMP)
    if not signature:
        raise Refused(401, "unsigned request: no signature", SIGNATURE)
    if not _DIGITS.match(timestamp):
        raise Refused(401, "not a Unix time in seconds", TIMESTAMP)
    if abs(ctx.clock.timestamp() - int(timestamp)) > WINDOW_S:
        raise Refused(401, f"more than {WINDOW_S // 60} minutes from now (stale or replayed)", TIMESTAMP)
    if not _SIGNATURE_SHAPE.match(signature):
        raise Refused(401, "not a v0 signature", SIGNATURE)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(401, "the body is not UTF-8, so its signature cannot be verified", SIGNATURE) from None
    verifier = SignatureVerifier(secret, clock=_DomainClock(ctx.clock))
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise Refused(401, "signature does not match the body", SIGNATURE)
    return signature


def _check_team(slack: SlackChat, offer: Offer) -> None:
    if slack.teams and offer.team is not None and offer.team not in slack.teams:
        raise Refused(
            403, "this Slack workspace is not allowed (fleet file: chat.slack.teams)", offer.team_field
        )


async def _first_sight(ctx: Context, signature: str) -> bool:
    """Record the signature; False when it was recorded before (Conflict)."""
    key = "slack:" + hashlib.sha256(signature.encode()).hexdigest()
    try:
        await ctx.store.kv.create(SEEN, key, {"at": ctx.clock.now().isoformat()})
    except Conflict:
        return False
    return True


# -- Mattermost ----------------------------------------------------------------------------------


def verify_mattermost(ctx: Context, headers: Mapping[str, str], form: Mapping[str, str]) -> None:
    """The slash command's token, from the header and/or the form (module docstring)."""
    chat = ctx.fleet.chat.mattermost if ctx.fleet is not None else None
    if chat is None:
        raise Refused(404, "Mattermost is not configured on this server (fleet file: chat.mattermost)")
    want = hashlib.sha256(_secret(ctx, chat.token_env).encode()).digest()
    lower = {k.lower(): v for k, v in headers.items()}
    given: list[tuple[str, str]] = []
    if "authorization" in lower:
        scheme, _, token = lower["authorization"].partition(" ")
        if scheme.lower() != "token" or not token:
            raise Refused(401, "expected Authorization: Token <the slash command's token>", "Authorization")
        given.append(("Authorization", token.strip()))
    if "token" in form:
        given.append(("token", form["token"]))
    if not given:
        raise Refused(401, "no token: the slash command's token is required", "token")
    for field, token in given:
        got = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        if not hmac.compare_digest(got, want):
            raise Refused(401, "wrong token", field)
