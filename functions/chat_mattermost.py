"""chat_mattermost: ``POST /hooks/chat/mattermost``, a Mattermost slash command → ``chat.command``.

What Mattermost sends (developers.mattermost.com/integrate/slash-commands, "Basic usage"): a
form-urlencoded POST with ``channel_id``, ``channel_name``, ``command``, ``response_url``,
``team_domain``, ``team_id``, ``text``, ``token``, ``trigger_id``, ``user_id``, ``user_name``,
and the same token as ``Authorization: Token <token>``. Mattermost neither signs nor
timestamps the request: the token is the credential (checked by
:func:`shared.runtime.chat_edge.verify_mattermost`; 404 when ``chat.mattermost`` is not
configured, 503 when its ``token_env`` is unset, 401 for a missing or wrong token).

Required: ``user_id``, ``team_id`` (400 naming the one missing); empty text is ``help``. Event
id ``consequence_id("mattermost", team_id, trigger_id)``, or a hash of the body where a server
sends no ``trigger_id`` — a re-sent request is the same event, dropped by the bus; ``via`` is
``mattermost``. Answer: Slack-compatible 200 ``{"response_type": "ephemeral", "text": "Working on
it: …"}`` (a too-long text: 200 with the reason, nothing published). Nothing is executed here.
"""

from __future__ import annotations

import hashlib

from shared.domain.releases import Refused
from shared.runtime.chat_edge import (
    command_event,
    decode_form,
    need,
    refusal,
    slash_command,
    too_long,
    verify_mattermost,
    working_on_it,
)
from shared.runtime.function import Context, HttpReply, HttpRequest, upshift_function

__all__ = ["chat_mattermost"]

VIA = "mattermost"
_FIELDS = {
    "team": "team_id",
    "user": "user_id",
    "channel": "channel_id",
    "trigger_id": "trigger_id",
    "user_name": "user_name",
    "response_url": "response_url",
}


@upshift_function
async def chat_mattermost(request: HttpRequest, ctx: Context) -> HttpReply:
    try:
        form = decode_form(request.body)
        verify_mattermost(ctx, request.headers, form)
        user, team = need(form, "user_id"), need(form, "team_id")
        text = form.get("text", "").strip() or "help"
        refused = too_long(text)
        if refused is not None:
            return HttpReply(200, refused.body)
        trigger = form.get("trigger_id") or None
        command = slash_command(_FIELDS, "mattermost", form, team=team, user=user, text=text, trigger=trigger)
    except Refused as exc:
        return refusal(ctx, exc)
    instant = trigger or "body:" + hashlib.sha256(request.body).hexdigest()
    event = command_event(command, ("mattermost", team, instant), VIA, ctx)
    ctx.log.info("chat command received", platform="mattermost", event_id=event.id, team=team)
    return HttpReply(200, working_on_it(text, mrkdwn=False), [event])
