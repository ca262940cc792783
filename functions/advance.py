"""advance (``stage.succeeded`` and ``stage.failed``): the next stage, or the run's outcome.

* ``stage.succeeded`` of a stage with a successor → ``stage.requested`` for it; when the
  target's window cannot take it now, the same event is delivered at the next opening
  (the stage function checks the window again when it arrives);
* ``stage.succeeded`` of the last stage → ``upgrade.succeeded``; the ledger records the target's
  new version and the run as succeeded;
* ``stage.failed`` → ``upgrade.failed`` with the stage, code and message; the run is failed.

Events for a run that is already over (succeeded, failed, halted, superseded, cancelled) are
dropped. Waves and halting belong to ``start_upgrades``, which consumes ``upgrade.*``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from events.catalog import StageRequested, T, UpgradeFailed, UpgradeSucceeded
from events.envelope import Event
from functions.stages._common import TERMINAL_RUN_STATES, consequence, expected_seconds, iso
from shared.bus.base import Delayed, Emitted
from shared.function import Context, upshift_function
from shared.stages import next_stage, run_id
from shared.windows import gate

__all__ = ["advance"]


@upshift_function
async def advance(event: Event, ctx: Context) -> list[Emitted]:
    d: Any = event.data
    rid = event.runid or run_id(d.target, d.to_version)
    ledger = ctx.store.ledger
    run = await ledger.run(rid) or {}
    if run.get("state") in TERMINAL_RUN_STATES:
        ctx.log.info("advance.dropped", reason=f"run is {run['state']}")
        return []
    now = ctx.clock.now()
    from_version = run.get("from_version") or _fleet_version(ctx, d.target) or ""

    if event.type == T.STAGE_FAILED:
        await ledger.update_run(
            rid, state="failed", ended_at=iso(now), failed_stage=d.stage, code=d.code, message=d.message
        )
        failed = UpgradeFailed(
            target=d.target,
            kind=d.kind,
            from_version=from_version,
            to_version=d.to_version,
            stage=d.stage,
            code=d.code,
            message=d.message,
        )
        return [consequence(event, T.UPGRADE_FAILED, failed)]

    nxt = next_stage(d.kind, d.stage)
    if nxt is None:
        await ledger.set_version(d.target, d.to_version)
        await ledger.update_run(rid, state="succeeded", ended_at=iso(now))
        done = UpgradeSucceeded(
            target=d.target, kind=d.kind, from_version=from_version, to_version=d.to_version
        )
        return [consequence(event, T.UPGRADE_SUCCEEDED, done)]

    req = StageRequested(
        target=d.target, kind=d.kind, stage=nxt, from_version=from_version, to_version=d.to_version
    )
    requested = consequence(event, T.STAGE_REQUESTED, req, nxt, req.attempt, stage=nxt)
    expected = timedelta(seconds=await expected_seconds(ctx, d.kind, nxt))
    g = gate(ctx.fleet, d.target, now, expected)
    if g.ok or g.retry_at is None:  # never fitting is the stage function's to report (stage.failed)
        return [requested]
    ctx.log.info("advance.waiting", stage=nxt, reason=g.reason, until=iso(g.retry_at))
    return [Delayed(requested, ctx.clock.real_delay((g.retry_at - now).total_seconds()))]


def _fleet_version(ctx: Context, target: str) -> str | None:
    try:
        return ctx.fleet.target(target).version
    except KeyError:
        return None
