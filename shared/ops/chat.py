"""``upshift chat <words…>``: one command of the chat grammar, run from a shell as the OS user.

The words are the text after ``/upshift`` (none: ``help``). They are parsed here first
(:func:`shared.domain.commands.parse`): a refusal prints its message and usage line on stderr and
exits 2, publishing nothing. Otherwise the command is published on the bus at ``--bus`` as a
``chat.command`` (platform and channel ``cli``, ``user`` = :func:`getpass.getuser`, ``via=cli``:
the fleet's ``rbac`` grants name OS users under ``cli:``) and the command waits, at most
``--wait`` seconds, for its audit entry, which ``chat_command`` (in ``upshift serve`` or a worker
on the same bus) records once it has authorized and executed it.

Output: the reply (or, with ``--json``, the whole audit entry). Exit 0 when the outcome is ``ok``,
1 when it is ``refused``, ``invalid`` or ``error`` (the reply then goes to stderr), 3 when no
entry came in time (nothing answered: is ``upshift serve`` running on this bus?), 2 for a usage
error or a bus URL that cannot be opened.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from typing import Any

import click

__all__ = ["NO_ANSWER", "chat"]

#: The exit code when no audit entry came within ``--wait``.
NO_ANSWER = 3


async def _run(url: str, text: str, user: str, wait: float) -> tuple[str, dict[str, Any] | None]:
    from events.catalog import ChatCommand
    from shared.bus import open_bus
    from shared.bus.url import wait_reachable
    from shared.runtime.api import await_entry, command_event
    from shared.store import open_store

    bus, store = open_bus(url), open_store(url)
    await wait_reachable(url, 10.0)
    event = command_event(
        ChatCommand(platform="cli", channel="cli", user=user, text=text), via="cli", source="/upshift/cli"
    )
    await store.start()
    try:
        await bus.start()
        try:
            await bus.publish(event)
        finally:
            await bus.close()
        return event.id, await await_entry(store.audit, event.id, wait)
    finally:
        await store.close()


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--bus", "bus_url", envvar="UPSHIFT_BUS", default=None, help="The bus `upshift serve` runs on (its URL)."
)
@click.option(
    "--wait",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the command's answer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the audit entry as JSON instead of the reply.")
def chat(words: tuple[str, ...], bus_url: str | None, wait: float, as_json: bool) -> None:
    """Run one chat command (`upshift chat help` lists them) as the OS user."""
    from shared.bus import DEFAULT_URL
    from shared.domain.commands import CommandError, parse

    text = " ".join(words) or "help"
    try:
        parse(text)
    except CommandError as exc:
        click.echo(f"upshift chat: {exc.message}\nusage: {exc.usage}", err=True)
        sys.exit(2)
    event_id, entry = asyncio.run(_run(bus_url or DEFAULT_URL, text, getpass.getuser(), wait))
    if entry is None:
        click.echo(
            f"upshift chat: no answer within {wait:g}s to command {event_id}: "
            "is `upshift serve` running on this bus?",
            err=True,
        )
        sys.exit(NO_ANSWER)
    ok = entry.get("outcome") == "ok"
    if as_json:
        click.echo(json.dumps(entry, indent=2, sort_keys=True, default=str))
    else:
        click.echo(str(entry.get("reply") or entry.get("outcome")), err=not ok)
    sys.exit(0 if ok else 1)
