"""plan_upgrades: ``version.released`` → ``upgrade.planned`` per target that takes the release.

The decision is :func:`shared.domain.plan.decide` (the same one ``upshift plan`` prints). For each
target that takes it:

* the run (``run_id(target, version)``) joins its window's waves document — latest wins: a
  planned run to an older version is superseded (ledger state ``superseded``), and a release
  no newer than a planned or running run of that target is refused;
* the ledger run is opened (state ``planned``, window, wave, from/to) — ``awaiting_approval``
  when its policy or wave needs approval (:func:`shared.domain.plan.approval_rule`): its waves
  entry then carries the request, bound to the window occurrence it can start in, and
  ``approval.requested`` is emitted (id from run and occurrence);
* ``upgrade.planned`` is emitted with an id derived from the run alone, so a replayed or
  re-announced release (webhook and feed both) emits nothing new (the bus drops the copy).

Soak: a release younger than a matching policy's ``min_release_age`` is re-emitted to this
function as a ``Delayed`` ``version.released`` (carrying the resolved ``released_at``) that
arrives when the youngest soak ends; at that point it is decided afresh (policies may have
changed). A run that exists in any state other than ``planned`` is never planned again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from events import Event, T
from events.catalog import UpgradePlanned, VersionReleased
from events.envelope import consequence
from shared.bus import Delayed, Emitted
from shared.domain.approvals import new_approval
from shared.domain.fleet import Fleet
from shared.domain.plan import Decision, Release, approval_rule, decide
from shared.domain.stages import run_id
from shared.domain.waves import BUCKET, add_planned, window_key
from shared.domain.windows import next_open, window_at
from shared.engine.approvals import request_event
from shared.runtime.function import Context, upshift_function
from shared.store.base import Value
from shared.store.ledger import DROPPED, PENDING, RunState, mutate

__all__ = ["plan_upgrades", "planned_event"]


@upshift_function
async def plan_upgrades(event: Event[VersionReleased], ctx: Context) -> list[Emitted]:
    data = event.data
    fleet = ctx.need_fleet()
    now = ctx.clock.now()
    released_at = _aware(data.released_at or event.time)
    release = Release(data.product, data.version, released_at)
    ledger = ctx.store.ledger
    current = {
        t.name: (await ledger.version(t.name)) or t.version
        for t in fleet.targets
        if t.product_key == data.product
    }
    decisions = decide(fleet, release, now, current)
    out: list[Emitted] = []

    # Runs that exist past "planned" (running, done, superseded) are history: never re-planned.
    groups: dict[str, dict[str, Decision]] = {}
    for d in decisions:
        if not d.take:
            if d.code != "product":
                ctx.log.info("not planned", target=d.target, version=d.version, code=d.code, reason=d.reason)
            continue
        rid = run_id(d.target, d.version)
        existing = await ledger.run(rid)
        if existing is not None and existing.get("state") not in PENDING:
            if existing.get("state") not in DROPPED:
                # A replay (DESIGN §6.7): this release planned the run, and a redelivery after the
                # run moved on still emits its upgrade.planned (same id: dropped if published).
                out.append(planned_event(rid, d))
            ctx.log.info("run exists", runid=rid, state=existing.get("state"))
            continue
        groups.setdefault(window_key(d.window), {})[rid] = d

    for key, by_run in groups.items():
        entries = {rid: _entry(fleet, d, now) for rid, d in by_run.items()}
        lost, superseded = await _join(ctx, key, entries)
        for old, new in superseded.items():
            await _supersede(ctx, old, new)
        for rid, d in by_run.items():
            if rid in lost:
                ctx.log.info("not planned", runid=rid, target=d.target, reason=lost[rid])
                continue
            needs = entries[rid].get("approval")
            await ledger.open_run(
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
            )
            out.append(planned_event(rid, d))
            if needs:
                out.append(request_event(rid, entries[rid], key))

    soaking = [d.soak_until for d in decisions if d.code == "soak" and d.soak_until is not None]
    if soaking:
        until = min(soaking)
        again = data.model_copy(update={"released_at": released_at})
        # Chained on this event's id: a copy that arrives early (domain clock behind) re-arms
        # under a new id instead of being dropped as a duplicate of itself.
        follow = event.follow(T.VERSION_RELEASED, again, id_parts=("soak", until.isoformat()))
        out.append(Delayed(follow, ctx.clock.real_delay((until - now).total_seconds())))
        ctx.log.info("soaking", version=data.version, until=until.isoformat())
    return out


def _entry(fleet: Fleet, d: Decision, now: datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "target": d.target,
        "kind": d.kind,
        "wave": d.wave,
        "from_version": d.from_version or "unknown",
        "to_version": d.version,
        "planned_at": now.isoformat(),
    }
    rule = approval_rule(fleet, fleet.target(d.target))
    if rule is not None:
        # bound to the window occurrence it can start in: the open one, else the next
        occ = None
        if d.window is not None:
            window = fleet.windows[d.window]
            occ = window_at(window, now) or next_open(window, now)
        entry["approval"] = new_approval(
            rule,
            now=now,
            opens_at=None if occ is None else occ.opens_at,
            closes_at=None if occ is None else occ.closes_at,
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
    ctx: Context, key: str, entries: dict[str, dict[str, Any]]
) -> tuple[dict[str, str], dict[str, str]]:
    """Add the runs to the window's waves document (CAS); (refused runs, superseded → new run).
    ``entries`` is updated in place to the entries as the document holds them."""
    outcome: list[tuple[dict[str, str], dict[str, str]]] = []

    def change(doc: Value | None) -> Value:
        new, lost, superseded = add_planned(doc, key, entries)
        outcome[:] = [(lost, superseded)]  # the last attempt is the one that was written
        return new

    doc = await mutate(ctx.store.kv, BUCKET, key, change)
    # the approval state as written (a replay finds the first delivery's, bound when it ran)
    for rid in entries:
        if rid in doc["runs"]:
            entries[rid] = doc["runs"][rid]
    return outcome[0]


async def _supersede(ctx: Context, old: str, new: str) -> None:
    await ctx.store.ledger.supersede_run(old, new)
    ctx.log.info("superseded", runid=old, by=new)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
