"""echo: proves the path end to end — answers a ``dev.upshift.echo`` with one echo back."""

from __future__ import annotations

from events import Event, T
from events.catalog import Echo
from shared.runtime.function import Context, upshift_function

__all__ = ["echo"]


@upshift_function
async def echo(event: Event[Echo], ctx: Context) -> list[Event[Echo]]:
    if not event.data.reply:
        return []  # an answer: answering it would loop forever
    ctx.log.info("echo", message=event.data.message)
    return [event.follow(T.ECHO, Echo(message=event.data.message, reply=False))]
