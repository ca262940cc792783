"""Planning runs: decided runs join their window's waves document and the ledger (latest wins).

Shared by ``plan_upgrades`` (a release's decisions) and the ``upgrade`` chat command (one target).
For each run that takes it:

* the run (``run_id(target, version)``) joins its window's waves document — latest wins: a
  planned run to an older version is superseded (ledger state ``superseded``), and a release
  no newer than a planned or running run of that target is refused;
* the ledger run is opened (state ``planned``, window, wave, from/to) — ``awaiting_approval``
  when its policy or wave needs approval (:func:`shared.domain.plan.approval_rule`): its waves
  entry then carries the request, bound to the window occurrence it can start in, and
  ``approval.requested`` is emitted (id from run and occurrence);
* ``upgrade.planned`` is emitted with an id derived from the run alone, so a replayed or
  re-announced release emits nothing new (the bus drops the copy).

A run that exists in any state other than pending is never planned again; a redelivery after it
moved on still emits its ``upgrade.planned`` (the same id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from events import Event, T
from events.catalog import UpgradePlanned
from events.envelope import consequence
from shared.bus import Emitted
from shared.domain.approvals import new_approval
from shared.domain.fleet import Fleet
from shared.domain.plan import Decision, approval_rule
from shared.domain.stages import run_id
from shared.domain.waves import head_room, window_key
from shared.domain.windows import next_open, window_at
from shared.engine.approvals import request_event
from shared.engine.waves import join
from shared.runtime.function import Context
from shared.store.ledger import DROPPED, PENDING, RunState

__all__ = ["plan_runs", "planned_event", "run_entry"]


async def plan_runs(
    ctx: Context,
    fleet: Fleet,
    decisions: list[Decision],
    now: datetime,
    *,
    requested_by: str | None = None,
    not_before: datetime | None = None,
    fields: dict[str, Any] | None = None,
) -> list[Emitted]:
    """Plan every decision that takes its release; the events to emit (see the module).
    ``requested_by``: who asked (a chat ``upgrade``: self-approval is checked against it);
    ``not_before``: the run may not start before then (``upgrade … next-window``); ``fields``:
    more for the ledger run a new plan opens."""
    out: list[Emitted] = []
    # Runs that exist past "planned" (running, done, superseded) are history: never re-planned.
    groups: dict[str, dict[str, Decision]] = {}
    for d in decisions:
        if not d.take:
            if d.code != "product":
                ctx.log.info("not planned", target=d.target, version=d.version, code=d.code, reason=d.reason)
            continue
        rid = run_id(d.target, d.version)
        existing = await ctx.store.ledger.run(rid)
        if existing is not None and existing.get("state") not in PENDING:
            if existing.get("state") not in DROPPED:
                # A replay (DESIGN §6.7): this release planned the run, and a redelivery after the
                # run moved on still emits its upgrade.planned (same id: dropped if published).
                out.append(planned_event(rid, d))
            ctx.log.info("run exists", runid=rid, state=existing.get("state"))
            continue
        groups.setdefault(window_key(d.window), {})[rid] = d

    for key, by_run in groups.items():
        entries = {
            rid: run_entry(fleet, d, now, requested_by=requested_by, not_before=not_before)
            for rid, d in by_run.items()
        }
        lost, superseded = await _join(ctx, fleet, key, entries)
        for old, new in superseded.items():
            await _supersede(ctx, old, new)
        for rid, d in by_run.items():
            if rid in lost:
                ctx.log.info("not planned", runid=rid, target=d.target, reason=lost[rid])
                continue
            needs = entries[rid].get("approval")
            await ctx.store.ledger.open_run(
                rid,
                state=RunState.AWAITING_APPROVAL if needs else RunState.PLANNED,
                target=d.target,
                kind=d.kind,
                product=d.product,
                from_version=d.from_version,
                to_version=d.version,
                window=d.window,
                wave=d.wave,
                planned_at=now.isoformat(),
                **({"requested_by": requested_by} if requested_by else {}),
                **(fields or {}),
            )
            out.append(planned_event(rid, d))
            if needs:
                out.append(request_event(rid, entries[rid], key))

    return out


def run_entry(
    fleet: Fleet,
    d: Decision,
    now: datetime,
    *,
    requested_by: str | None = None,
    not_before: datetime | None = None,
) -> dict[str, Any]:
    """A decided run's waves entry, with its approval request when its rule needs one."""
    entry: dict[str, Any] = {
        "target": d.target,
        "kind": d.kind,
        "wave": d.wave,
        "from_version": d.from_version or "unknown",
        "to_version": d.version,
        "planned_at": now.isoformat(),
    }
    if not_before is not None:
        entry["not_before"] = not_before.isoformat()
    rule = approval_rule(fleet, fleet.target(d.target))
    if rule is not None:
        # bound to the window occurrence it can start in: the open one, else the next
        occ = None
        if d.window is not None:
            window = fleet.windows[d.window]
            occ = window_at(window, not_before or now) or next_open(window, not_before or now)
        entry["approval"] = new_approval(
            rule,
            now=now,
            opens_at=None if occ is None else occ.opens_at,
            closes_at=None if occ is None else occ.closes_at,
            requested_by=requested_by,
        )
    return entry


def planned_event(rid: str, d: Decision) -> Event[UpgradePlanned]:
    """The run's ``upgrade.planned``: its id depends on the run alone."""
    data = UpgradePlanned(
        target=d.target,
        kind=d.kind,
        from_version=d.from_version or "unknown",
        to_version=d.version,
        window=d.window,
        wave=d.wave,
        product=d.product,
    )
    return consequence(
        T.UPGRADE_PLANNED,
        data,
        key=(T.UPGRADE_PLANNED, rid),
        subject=d.target,
        runid=rid,
        target=d.target,
        kind=d.kind,
    )


async def _join(
    ctx: Context, fleet: Fleet, key: str, entries: dict[str, dict[str, Any]]
) -> tuple[dict[str, str], dict[str, str]]:
    """Add the runs to the window's waves document and its pages; (refused runs, superseded →
    new run). ``entries`` is updated in place to the entries as the document holds them."""
    added = await join(ctx.store.kv, key, entries, head_max=head_room(fleet, key))
    # the approval state as written (a replay finds the first delivery's, bound when it ran)
    for rid in entries:
        if rid in added.doc["runs"]:
            entries[rid] = added.doc["runs"][rid]
    return added.lost, added.superseded


async def _supersede(ctx: Context, old: str, new: str) -> None:
    await ctx.store.ledger.supersede_run(old, new)
    ctx.log.info("superseded", runid=old, by=new)
