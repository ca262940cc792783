"""``upshift status``: runs and their stages, read from the ledger.

Read-only: it opens the store at ``--bus`` (the same URL as the bus; default the embedded SQLite
file), prints every run as a table (or ``--json``), or one run in full with ``--run``, and
closes it. An unknown ``--run`` is a usage error (exit 2).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

__all__ = ["status"]


async def _load(url: str, run: str | None) -> list[dict[str, Any]]:
    from shared.store import open_store

    store = open_store(url)
    await store.start()
    try:
        if run is not None:
            doc = await store.ledger.run(run)
            return [doc] if doc else []
        return await store.ledger.runs()
    finally:
        await store.close()


def _when(ts: object) -> str:
    if isinstance(ts, int | float):
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(ts or "")


def _render_runs(runs: list[dict[str, Any]], console: Console) -> None:
    from shared.store.ledger import RunState

    style = {
        RunState.SUCCEEDED: "green",
        RunState.FAILED: "red",
        RunState.HALTED: "red",
        RunState.RUNNING: "yellow",
        RunState.PLANNED: "cyan",
        RunState.AWAITING_APPROVAL: "magenta",
        RunState.DENIED: "red",
        RunState.CANCELLED: "dim",
    }
    table = Table(title=f"{len(runs)} run(s)")
    for col in ("run", "target", "kind", "from → to", "wave", "state", "stages", "updated"):
        table.add_column(col)
    for r in runs:
        stages = " ".join(f"{name}:{info.get('state', '?')}" for name, info in r.get("stages", {}).items())
        state = r.get("state", "?")
        table.add_row(
            r.get("id", "?"),
            str(r.get("target", "")),
            str(r.get("kind", "")),
            f"{r.get('from_version', '?')} → {r.get('to_version', '?')}",
            str(r.get("wave", "")),
            f"[{style.get(state, 'white')}]{state}[/]",
            stages,
            _when(r.get("updated_at")),
        )
    console.print(table)


@click.command()
@click.option(
    "--bus", "bus_url", envvar="UPSHIFT_BUS", default=None, help="Where the ledger is (same URL as the bus)."
)
@click.option("--run", "run_id", default=None, help="Show one run with all its stage details.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(bus_url: str | None, run_id: str | None, as_json: bool) -> None:
    """Runs and their stages, from the ledger."""
    from shared.bus import DEFAULT_URL

    runs = asyncio.run(_load(bus_url or DEFAULT_URL, run_id))
    if run_id is not None and not runs:
        raise click.BadParameter(f"no run {run_id!r} in the ledger", param_hint="--run")
    if as_json:
        click.echo(json.dumps(runs if run_id is None else runs[0], indent=2, sort_keys=True, default=str))
    elif run_id is not None:
        click.echo(json.dumps(runs[0], indent=2, sort_keys=True, default=str))
    else:
        _render_runs(runs, Console())
