"""plan_upgrades: ``version.released`` → ``upgrade.planned`` per target that takes the release.

The decision is :func:`shared.domain.plan.decide` (the same one ``upshift plan`` prints); the
runs it takes are planned by :func:`shared.engine.planning.plan_runs` (shared with the ``upgrade``
chat command). For each target that takes it:

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

from events import Event, T
from events.catalog import VersionReleased
from shared.bus import Delayed, Emitted
from shared.domain.plan import Release, decide
from shared.engine.planning import plan_runs
from shared.runtime.function import Context, upshift_function

__all__ = ["plan_upgrades"]


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

    out: list[Emitted] = await plan_runs(ctx, fleet, decisions, now)

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


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
