"""upgrade_request (``upgrade.requested``): an upgrade asked for outside the release flow by a bot
or script (``POST /events``) becomes the chat command ``upgrade <target> to <version>``.

The one path for commands stays ``chat_command``: it authorizes the publisher (the ingress's
``via=token:<name>``, carried over; an event without one is refused there as untrusted), plans
the run with approval rules and self-approval against the publisher, and records the audit
entry. The command's id is derived from this event's, so a redelivery publishes the same one.
"""

from __future__ import annotations

from events.catalog import ChatCommand, T, UpgradeRequested
from events.envelope import Event, consequence
from shared.bus.base import Emitted
from shared.runtime.function import Context, upshift_function

__all__ = ["upgrade_request"]


@upshift_function
async def upgrade_request(event: Event[UpgradeRequested], ctx: Context) -> list[Emitted]:
    d = event.data
    command = ChatCommand(
        platform="bot",
        channel="events",
        user=d.requested_by or "bot",
        text=f"upgrade {d.target} to {d.to_version}",
    )
    out = consequence(
        T.CHAT_COMMAND, command, key=(T.CHAT_COMMAND, "upgrade.requested", event.id), subject=d.target
    )
    via = event.extensions.get("via")
    if isinstance(via, str):
        out = out.model_copy(update={"extensions": {"via": via}})
    ctx.log.info("upgrade.requested as a command", target=d.target, to_version=d.to_version, via=via)
    return [out]
