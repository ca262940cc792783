"""The dispatch: a parsed command → its executor; and the targets a command touches (RBAC)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from events.catalog import ChatCommand
from events.envelope import Event
from shared.domain.commands import (
    Approve,
    Audit,
    Cancel,
    Command,
    Deny,
    Freeze,
    Freezes,
    Help,
    Pause,
    Plan,
    Resume,
    Run,
    Status,
    TargetScope,
    Unfreeze,
    Upgrade,
)
from shared.domain.fleet import Fleet, Target
from shared.domain.rbac import Identity
from shared.domain.scopes import targets_in
from shared.engine.chatops import control, runs, views
from shared.engine.chatops.outcome import Outcome
from shared.runtime.function import Context

__all__ = ["execute", "targets_of"]

Executor = Callable[[Any, Event[ChatCommand], Identity, Context, datetime], Awaitable[Outcome]]

_EXECUTORS: dict[type, Executor] = {
    Help: views.help_,
    Status: views.status,
    Plan: views.plan,
    Freezes: views.freezes,
    Audit: views.audit,
    Approve: runs.approve,
    Deny: runs.deny,
    Cancel: runs.cancel,
    Upgrade: runs.upgrade,
    Pause: control.pause,
    Resume: control.resume,
    Freeze: control.freeze,
    Unfreeze: control.unfreeze,
}


async def execute(
    cmd: Command, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> Outcome:
    """Run ``cmd`` (parsed and authorized) for ``who``."""
    return await _EXECUTORS[type(cmd)](cmd, event, who, ctx, now)


async def targets_of(cmd: Command, fleet: Fleet, ctx: Context) -> list[Target] | None:
    """The targets ``cmd`` touches, for the role check; None for a command touching none (help,
    an overall status, plan, freezes, the whole audit). A run not in the ledger touches nothing
    (its executor answers that it does not exist)."""
    match cmd:
        case (
            Approve(run=r)
            | Deny(run=r)
            | Cancel(what=Run() as r)
            | Status(what=Run() as r)
            | Audit(run=Run() as r)
        ):
            return await _of_run(r, fleet, ctx)
        case Status(what=TargetScope(name)) | Upgrade(target=name):
            return [t for t in fleet.targets if t.name == name]
        case Pause(scope=s) | Resume(scope=s) | Freeze(scope=s) | Unfreeze(scope=s) | Cancel(what=s):
            return targets_in(s, fleet)  # type: ignore[arg-type]
    return None


async def _of_run(run: Run, fleet: Fleet, ctx: Context) -> list[Target]:
    doc = await ctx.store.ledger.run(run.id)
    if doc is None:
        return []
    return [t for t in fleet.targets if t.name == doc.get("target")]
