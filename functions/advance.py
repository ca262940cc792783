"""advance (``stage.succeeded``, ``stage.failed``, ``event.deadlettered``): the next stage, or the
run's outcome. The one function that writes a run's end state.

* ``stage.succeeded`` of a stage with a successor → ``stage.requested`` for it; when the
  target's window cannot take it now, the same event is delivered at the next opening
  (the stage function checks the window again when it arrives);
* ``stage.succeeded`` of the last stage → ``upgrade.succeeded``; the ledger records the target's
  new version and the run as succeeded;
* ``stage.failed`` → ``upgrade.failed`` with the stage, code and message; the run is failed;
* ``event.deadlettered`` of an event of a run still open → the run is failed with the bus's
  reason and ``upgrade.failed`` is emitted (so waves halt and chat hears it): a dead letter never
  leaves a run silently open (DESIGN §6.8).

A replay (DESIGN §6.7): the run's end state is written before the outbox commits, so an event
finding its run already ended *by this same outcome* emits that outcome again, with the same id
(the bus drops the copy) — a process killed between the two loses nothing. Events of a run ended
otherwise (cancelled, superseded, halted, or the other outcome) are dropped.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from events.catalog import DeadLettered, StageRequested, T, UpgradeFailed, UpgradeSucceeded
from events.envelope import Event
from shared import crashpoints
from shared.bus.base import Delayed, Emitted
from shared.domain.stages import next_stage, run_id
from shared.domain.windows import gate
from shared.engine.stage import consequence, expected_seconds, iso
from shared.runtime.function import Context, upshift_function
from shared.store.ledger import TERMINAL, RunState

__all__ = ["advance"]


@upshift_function
async def advance(event: Event, ctx: Context) -> list[Emitted]:
    d: Any = event.data
    if event.type == T.EVENT_DEAD_LETTERED:
        return await _dead_lettered(event, d, ctx)
    rid = event.runid or run_id(d.target, d.to_version)
    ledger = ctx.store.ledger
    run = await ledger.run(rid) or {}
    state = run.get("state")
    now = ctx.clock.now()
    from_version = run.get("from_version") or _fleet_version(ctx, d.target) or ""

    if event.type == T.STAGE_FAILED:
        if state == RunState.FAILED:  # a replay: emit the outcome the first delivery wrote
            return [_failed(event, d, run, from_version)]
        if state in TERMINAL:
            ctx.log.info("advance.dropped", reason=f"run is {state}")
            return []
        run = await ledger.end_run(
            rid, RunState.FAILED, ended_at=iso(now), failed_stage=d.stage, code=d.code, message=d.message
        )
        crashpoints.hit("advance.ended")
        return [_failed(event, d, run, from_version)]

    nxt = next_stage(d.kind, d.stage)
    if nxt is None:
        if state == RunState.SUCCEEDED:  # a replay: emit the outcome the first delivery wrote
            return [_succeeded(event, d, from_version)]
        if state in TERMINAL:
            ctx.log.info("advance.dropped", reason=f"run is {state}")
            return []
        await ledger.set_version(d.target, d.to_version)
        await ledger.end_run(rid, RunState.SUCCEEDED, ended_at=iso(now))
        crashpoints.hit("advance.ended")
        return [_succeeded(event, d, from_version)]

    if state in TERMINAL:
        ctx.log.info("advance.dropped", reason=f"run is {state}")
        return []
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


def _succeeded(event: Event, d: Any, from_version: str) -> Event:
    done = UpgradeSucceeded(target=d.target, kind=d.kind, from_version=from_version, to_version=d.to_version)
    return consequence(event, T.UPGRADE_SUCCEEDED, done)


def _failed(event: Event, d: Any, run: dict[str, Any], from_version: str) -> Event:
    """The run's ``upgrade.failed``, from what the ledger holds (the first failure's words)."""
    failed = UpgradeFailed(
        target=d.target,
        kind=d.kind,
        from_version=from_version,
        to_version=d.to_version,
        stage=run.get("failed_stage") or d.stage or "",
        code=run.get("code") or getattr(d, "code", "") or "failed",
        message=run.get("message") or getattr(d, "message", "") or "failed",
    )
    return consequence(event, T.UPGRADE_FAILED, failed)


async def _dead_lettered(event: Event[DeadLettered], d: DeadLettered, ctx: Context) -> list[Emitted]:
    """A dead letter of a run's event fails the run (unless it already ended)."""
    if d.target is None or d.kind is None or d.to_version is None:
        ctx.log.warning("advance.dead_letter_without_run", consumer=d.consumer, event_type=d.event_type)
        return []
    rid = event.runid or run_id(d.target, d.to_version)
    ledger = ctx.store.ledger
    run = await ledger.run(rid)
    if run is None:
        ctx.log.warning("advance.dead_letter_of_unknown_run", run=rid, consumer=d.consumer)
        return []
    state = run.get("state")
    from_version = run.get("from_version") or _fleet_version(ctx, d.target) or ""
    if state == RunState.FAILED and run.get("code") == "dead_letter":  # a replay of our own write
        return [_failed(event, d, run, from_version)]
    if state in TERMINAL:
        return []
    message = f"{d.consumer} gave up on {d.event_type} after {d.attempts} attempts: {d.error}"[:2000]
    run = await ledger.end_run(
        rid,
        RunState.FAILED,
        ended_at=iso(ctx.clock.now()),
        failed_stage=d.stage or "",
        code="dead_letter",
        message=message,
    )
    crashpoints.hit("advance.ended")
    ctx.log.error("advance.run_failed_by_dead_letter", consumer=d.consumer, event_type=d.event_type)
    return [_failed(event, d, run, from_version)]


def _fleet_version(ctx: Context, target: str) -> str | None:
    try:
        return ctx.fleet.target(target).version
    except KeyError:
        return None
