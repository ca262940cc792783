"""``upshift audit [RUN]``: the audit trail — who ran which command, from where, and what came of it.

Read-only: it opens the store at ``--bus`` (the same URL as the bus; default the embedded SQLite
file), prints the entries oldest first (:meth:`shared.store.audit.Audit.entries`) as a table —
time, actor, platform, command text, run, outcome, the reply's first line — or, with ``--json``, as a JSON list of
the entries as recorded, and closes it. ``RUN`` keeps one run's entries (a ``RUN`` not shaped like
a run id is a usage error, exit 2); ``--limit N`` the last N.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["audit"]

_STYLE = {"ok": "green", "refused": "red", "invalid": "yellow", "error": "red"}


async def _load(url: str, run: str | None, limit: int | None) -> list[dict[str, Any]]:
    from shared.store import open_store

    store = open_store(url)
    await store.start()
    try:
        return await store.audit.entries(run=run, limit=limit)
    finally:
        await store.close()


def _first_line(text: str, width: int = 80) -> str:
    """A reply in one table cell: its first line, cut at ``width`` (the JSON has it whole)."""
    line, _, rest = text.strip().partition("\n")
    return line[:width] + ("…" if rest or len(line) > width else "")


def _render(entries: list[dict[str, Any]], console: Console) -> None:
    table = Table(title=f"{len(entries)} audit entr{'y' if len(entries) == 1 else 'ies'}")
    for col in ("time", "actor", "platform", "command", "run", "outcome", "reply"):
        table.add_column(col)
    for e in entries:
        outcome = str(e.get("outcome", "?"))
        table.add_row(
            escape(str(e.get("at", ""))),
            escape(str(e.get("actor") or e.get("user") or "")),
            escape(str(e.get("platform", ""))),
            escape(str(e.get("text", ""))),
            escape(str(e.get("run") or "")),
            f"[{_STYLE.get(outcome, 'white')}]{escape(outcome)}[/]",
            escape(_first_line(str(e.get("reply") or ""))),
        )
    console.print(table)


@click.command()
@click.argument("run", required=False)
@click.option(
    "--bus", "bus_url", envvar="UPSHIFT_BUS", default=None, help="Where the store is (same URL as the bus)."
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the last N entries.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def audit(run: str | None, bus_url: str | None, limit: int | None, as_json: bool) -> None:
    """Who ran which command (chat, bot, API, CLI) and its outcome; RUN: only that run's."""
    from shared.bus import DEFAULT_URL
    from shared.domain.commands import RUN_ID

    if run is not None and not RUN_ID.fullmatch(run):
        raise click.BadParameter(f"{run[:80]!r} is not a run id (like 'r0123456789abcde')", param_hint="RUN")
    entries = asyncio.run(_load(bus_url or DEFAULT_URL, run, limit))
    if as_json:
        click.echo(json.dumps(entries, indent=2, sort_keys=True, default=str))
    else:
        _render(entries, Console())
