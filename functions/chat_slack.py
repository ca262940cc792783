"""chat_slack: the Slack app's two Request URLs → ``chat.command`` (nothing is executed here).

* ``POST /hooks/chat/slack`` (:func:`chat_slack`): the slash command ``/upshift <text>``, a form
  with Slack's fields (``team_id``, ``user_id``, ``user_name``, ``channel_id``, ``text``,
  ``response_url``, ``trigger_id``, …). Required: ``user_id``, ``team_id``, ``trigger_id`` (400
  naming the one missing). Empty text is ``help``; Slack's ``ssl_check=1`` probe is answered 200
  and runs nothing. Event id
  ``consequence_id("slack", team_id, trigger_id)``. Answer: 200 ephemeral "Working on it: `…`".
  A text over the ``chat.command`` limit is a 200 ephemeral saying so, publishing nothing (Slack
  shows a non-200 as a bare error the user cannot act on).
* ``POST /hooks/chat/slack/interactive`` (:func:`chat_slack_interactive`): Block Kit
  interactivity, form field ``payload`` (JSON). Only ``block_actions`` whose first action is one
  of the buttons Upshift posts (:data:`APPROVE`, :data:`DENY`, value: an
  ``ApprovalBinding``'s JSON) publish; anything else is acknowledged (200) and ignored. Event id
  ``consequence_id("slack-action", team, trigger_id or action_ts, action_id)``. Answer: 200
  ``{}`` — Slack's acknowledgement; the result comes through ``response_url``.

Verification, replay and retry handling, the refusals and their order:
:mod:`shared.runtime.chat_edge`. Both set ``via=slack`` on the event.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from events.catalog import ApprovalBinding
from shared.domain.releases import Refused
from shared.limits import JsonRefused, loads_bounded
from shared.runtime.chat_edge import (
    Offer,
    command_event,
    need,
    new_command,
    slack_edge,
    slash_command,
    too_long,
    working_on_it,
)
from shared.runtime.function import Context, HttpReply, HttpRequest, upshift_function

__all__ = ["APPROVE", "DENY", "BlockActions", "chat_slack", "chat_slack_interactive"]

#: The ``action_id`` of the buttons on an approval request.
APPROVE = "upshift.approve"
DENY = "upshift.deny"
VIA = "slack"
#: ChatCommand field → the slash command's form field, for a 400 naming what Slack sent.
_SLASH_FIELDS = {
    "team": "team_id",
    "user": "user_id",
    "channel": "channel_id",
    "trigger_id": "trigger_id",
    "user_name": "user_name",
    "response_url": "response_url",
}
_ACTION_FIELDS = {
    "team": "payload.team.id",
    "user": "payload.user.id",
    "user_name": "payload.user.username",
    "channel": "payload.channel.id",
    "response_url": "payload.response_url",
    "trigger_id": "payload.trigger_id",
    "action_id": "payload.actions[0].action_id",
}


@upshift_function
async def chat_slack(request: HttpRequest, ctx: Context) -> HttpReply:
    def parse(form: dict[str, str]) -> Offer:
        if form.get("ssl_check") == "1":  # Slack checking the certificate: acknowledge, nothing to run
            return Offer({})
        user, team, trigger = need(form, "user_id"), need(form, "team_id"), need(form, "trigger_id")
        text = form.get("text", "").strip() or "help"
        refused = too_long(text)
        if refused is not None:
            return Offer(refused.body, team=team)
        command = slash_command(
            _SLASH_FIELDS, "slack", form, team=team, user=user, text=text, trigger=trigger
        )
        event = command_event(command, ("slack", team, trigger), VIA, ctx)
        return Offer(working_on_it(text, mrkdwn=True), event, team=team)

    return await slack_edge(request, ctx, parse)


# -- interactivity -------------------------------------------------------------------------------


class _Slack(BaseModel):
    # Slack sends far more than this reads; the rest is Slack's business.
    model_config = ConfigDict(extra="ignore")


class SlackRef(_Slack):
    id: str = Field(min_length=1)


class SlackUser(_Slack):
    id: str = Field(min_length=1)
    username: str | None = None
    name: str | None = None
    team_id: str | None = None


class SlackAction(_Slack):
    action_id: str = Field(min_length=1)
    value: str | None = None
    action_ts: str | None = None


class BlockActions(_Slack):
    """The part of a ``block_actions`` payload Upshift reads."""

    type: str
    # null on an org-wide (Enterprise Grid) install: the user's team_id stands in
    team: SlackRef | None = None
    user: SlackUser
    channel: SlackRef | None = None
    response_url: str | None = None
    trigger_id: str | None = None
    actions: list[SlackAction] = Field(min_length=1)


@upshift_function
async def chat_slack_interactive(request: HttpRequest, ctx: Context) -> HttpReply:
    def parse(form: dict[str, str]) -> Offer:
        doc = _payload(need(form, "payload"))
        team_hint = _team_hint(doc)
        if doc.get("type") != "block_actions":
            return Offer({}, team=team_hint, team_field="payload.team.id")
        p = _model(doc)
        team = p.team.id if p.team is not None else p.user.team_id
        if not team:
            raise Refused(400, "missing", "payload.team.id")
        action = p.actions[0]
        if action.action_id not in (APPROVE, DENY):
            return Offer({}, team=team, team_field="payload.team.id")
        binding = _binding(action.value)
        instant = p.trigger_id or action.action_ts
        if not instant:
            raise Refused(400, "missing (and no actions[0].action_ts either)", "payload.trigger_id")
        if action.action_id == APPROVE:
            text = f"approve {binding.run}"
        else:
            text = f"deny {binding.run} denied with the Slack button"
        command = new_command(
            _ACTION_FIELDS,
            platform="slack",
            team=team,
            user=p.user.id,
            user_name=p.user.username or p.user.name,
            channel=p.channel.id if p.channel is not None else "",
            text=text,
            response_url=p.response_url,
            trigger_id=p.trigger_id,
            action_id=action.action_id,
            binding=binding,
        )
        event = command_event(command, ("slack-action", team, instant, action.action_id), VIA, ctx)
        return Offer({}, event, team=team, team_field="payload.team.id")

    return await slack_edge(request, ctx, parse)


def _payload(raw: str) -> dict[str, Any]:
    try:
        doc = loads_bounded(raw)
    except JsonRefused as exc:
        raise Refused(400, exc.message, "payload" + (f".{exc.field}" if exc.field else "")) from None
    if not isinstance(doc, dict):
        raise Refused(400, "not a JSON object", "payload")
    return doc


def _team_hint(doc: dict[str, Any]) -> str | None:
    """The team of any payload, so even an ignored one from a foreign workspace is refused."""
    team = doc.get("team")
    value = team.get("id") if isinstance(team, dict) else None
    return value if isinstance(value, str) else None


def _model(doc: dict[str, Any]) -> BlockActions:
    try:
        return BlockActions.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise Refused(400, err["msg"], "payload" + _path(err["loc"])) from None


def _binding(value: str | None) -> ApprovalBinding:
    field = "payload.actions[0].value"
    if not value:
        raise Refused(400, "missing", field)
    try:
        return ApprovalBinding.model_validate(loads_bounded(value))
    except JsonRefused as exc:
        raise Refused(400, f"not an approval binding: {exc.message}", field) from None
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = _path(err["loc"]).lstrip(".") or "value"
        raise Refused(400, f"not an approval binding ({where}: {err['msg']})", field) from None


def _path(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as the dotted/indexed path Slack's docs use: ``.actions[0].value``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
