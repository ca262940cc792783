"""chat_command: ``chat.command`` → execute it → the audit entry, the control events, the reply.

Parse (:func:`shared.domain.commands.parse`) → who (:func:`shared.domain.rbac.identity_of`, from
the event's ``via`` extension that only the trusted edges set) → may they
(:func:`shared.domain.rbac.authorize`, on the targets the command touches, re-checked on every
delivery: a button clicked after a role was taken away is refused) → execute
(:mod:`shared.engine.chatops`) → one audit entry (:class:`shared.store.audit.Audit`, key = this
event's id) → emit what the command caused and, when the command came with a ``response_url``,
``chat.reply`` (id from this event's: a redelivery replies once).

Bad text, an unknown user, a role too low, a command that does not apply: all are answers (the
usage line, who to ask, why not), recorded in the audit like any other, never an exception. An
unexpected failure (the store unreachable) raises before anything is emitted, so the bus retries
the command; every write it made before is one a retry finds and repeats.
"""

from __future__ import annotations

from events.catalog import ChatCommand, ChatReply, T
from events.envelope import Event, consequence
from shared.bus.base import Delayed, Emitted
from shared.domain.commands import Command, CommandError, Run, min_role, parse, scope_text
from shared.domain.rbac import Identity, authorize, identity_of
from shared.engine.chatops.execute import execute, targets_of
from shared.engine.chatops.outcome import Outcome, invalid, refused
from shared.runtime.function import Context, upshift_function

__all__ = ["chat_command"]

MAX_REPLY = 3900


@upshift_function
async def chat_command(event: Event[ChatCommand], ctx: Context) -> list[Emitted]:
    fleet = ctx.need_fleet()
    now = ctx.clock.now()
    data = event.data
    via = event.extensions.get("via")
    who = identity_of(data, via if isinstance(via, str) else None)
    cmd: Command | None = None
    try:
        cmd = parse(data.text)
    except CommandError as exc:
        outcome = invalid(f"{exc.message}\nusage: `{exc.usage}`")
    else:
        if who is None:
            outcome = refused(
                f"commands are taken only from the Slack and Mattermost edges, the CLI, or an "
                f"authenticated bot or API token (this one came via {str(via)[:40]!r})"
            )
        else:
            denied = authorize(fleet, who, min_role(cmd), await targets_of(cmd, fleet, ctx))
            outcome = (
                refused(denied.message) if denied is not None else await execute(cmd, event, who, ctx, now)
            )
    ctx.log.info(
        "chat.command",
        command=None if cmd is None else cmd.name,
        outcome=outcome.code,
        actor=None if who is None else who.id,
    )
    await ctx.store.audit.record(_entry(event, who, cmd, outcome, now.isoformat()))
    out = list(outcome.events)
    if data.response_url:
        out.append(_reply(event, outcome))
    return out


def _entry(
    event: Event[ChatCommand], who: Identity | None, cmd: Command | None, outcome: Outcome, at: str
) -> dict[str, object]:
    d = event.data
    scope = getattr(cmd, "scope", None) or getattr(cmd, "what", None)
    named = getattr(cmd, "run", None) or getattr(cmd, "what", None)
    run = outcome.run or (named.id if isinstance(named, Run) else None)
    return {
        "id": event.id,
        "at": at,
        "platform": d.platform,
        "actor": None if who is None else who.id,
        "on_behalf_of": None if who is None else who.on_behalf_of,
        "via": event.extensions.get("via"),
        "team": d.team,
        "user": d.user,
        "user_name": d.user_name,
        "channel": d.channel,
        "trigger_id": d.trigger_id,
        "action_id": d.action_id,
        "command": None if cmd is None else cmd.name,
        "text": d.text,
        "run": run,
        "scope": None if scope is None or isinstance(scope, Run) else scope_text(scope),
        "outcome": outcome.code,
        "reply": outcome.reply[:MAX_REPLY],
        "events": [e.event.id if isinstance(e, Delayed) else e.id for e in outcome.events],
    }


def _reply(event: Event[ChatCommand], outcome: Outcome) -> Event[ChatReply]:
    d = event.data
    assert d.response_url is not None
    icon = {"ok": "", "refused": ":no_entry: ", "invalid": ":warning: ", "error": ":x: "}[outcome.code]
    # an approval button's result replaces the request it was clicked on, for everyone to see
    shared = d.binding is not None and outcome.code == "ok"
    data = ChatReply(
        platform=d.platform,
        response_url=d.response_url,
        text=(icon + outcome.reply)[:MAX_REPLY],
        ephemeral=not shared,
        replace_original=shared,
    )
    return consequence(T.CHAT_REPLY, data, key=(T.CHAT_REPLY, event.id), subject=d.channel or None)
