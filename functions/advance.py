"""advance (``stage.succeeded``, ``stage.failed``, ``event.deadlettered``): the next stage, or the
run's outcome. The one function that writes a run's end state.

* ``stage.succeeded`` of a stage with a successor → ``stage.requested`` for it; when the
  target's window cannot take it now, the same event is delivered at the next opening
  (the stage function checks the window again when it arrives);
* ``stage.succeeded`` of the last stage → ``upgrade.succeeded``; the ledger records the target's
  new version and the run as succeeded;
* ``stage.failed`` → ``upgrade.failed`` with the stage, code and message; the run is failed —
  except code ``cancelled`` (a stage refused to begin for a run someone cancelled before its
  upgrade stage): the run ends ``cancelled`` and ``upgrade.cancelled`` is emitted;
* ``event.deadlettered`` of an event of a run still open → the run is failed with the bus's
  reason and ``upgrade.failed`` is emitted (so waves halt and chat hears it): a dead letter never
  leaves a run silently open (DESIGN §6.8).

A replay (DESIGN §6.7): the run's end state is written before the outbox commits, so an event
finding its run already ended *by this same outcome* emits that outcome again, with the same id
(the bus drops the copy) — a process killed between the two loses nothing. Events of a run ended
otherwise (cancelled, superseded, halted, or the other outcome) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from events.catalog import (
    DeadLettered,
    Kind,
    StageFailed,
    StageRequested,
    StageSucceeded,
    T,
    UpgradeFailed,
    UpgradeSucceeded,
)
from events.envelope import Event
from shared import crashpoints
from shared.bus.base import Delayed, Emitted
from shared.domain.stages import next_stage, run_id
from shared.domain.windows import gate
from shared.engine.consequences import in_run, run_cancelled
from shared.engine.polling import expected_seconds
from shared.engine.vendor_clock import iso
from shared.runtime import metrics
from shared.runtime.function import Context, upshift_function
from shared.store.base import Value
from shared.store.ledger import TERMINAL, RunState

__all__ = ["advance"]

#: What advance consumes (serverless.yml): a stage's outcome, or a dead letter.
Input = Event[StageSucceeded] | Event[StageFailed] | Event[DeadLettered]


class _Run(Protocol):
    """The run an input names (its data's correlation)."""

    @property
    def target(self) -> str: ...
    @property
    def kind(self) -> Kind: ...
    @property
    def stage(self) -> str | None: ...
    @property
    def to_version(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Lettered:
    """The run of a dead letter that names one (its fields checked present)."""

    target: str
    kind: Kind
    stage: str | None
    to_version: str


@upshift_function
async def advance(event: Input, ctx: Context) -> list[Emitted]:
    d = event.data
    if isinstance(d, DeadLettered):
        return await _dead_lettered(event, d, ctx)
    rid = event.runid or run_id(d.target, d.to_version)
    ledger = ctx.store.ledger
    run = await ledger.run(rid) or {}
    state = run.get("state")
    now = ctx.clock.now()
    from_version = run.get("from_version") or _fleet_version(ctx, d.target) or ""
    # The stage's outcome, not counted again once its run ended (those are replays). A middle
    # stage writes nothing here, so a redelivery of its outcome is counted again: this process's
    # histogram is at-least-once, like the bus that feeds it (good for rates, not for audits).
    if state not in TERMINAL:
        metrics.stage_ended(d.kind, d.stage, d.code if isinstance(d, StageFailed) else None, run, now)

    if isinstance(d, StageFailed) and d.code == "cancelled":
        return await _cancelled(event, d, rid, run, ctx)
    if isinstance(d, StageFailed):
        if state == RunState.FAILED:  # a replay: emit the outcome the first delivery wrote
            return [_failed(event, d, run, from_version, d.code, d.message)]
        if state in TERMINAL:
            ctx.log.info("advance.dropped", reason=f"run is {state}")
            return []
        run = await ledger.end_run(
            rid, RunState.FAILED, ended_at=iso(now), failed_stage=d.stage, code=d.code, message=d.message
        )
        crashpoints.hit("advance.ended")
        return [_failed(event, d, run, from_version, d.code, d.message)]

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
    requested = in_run(event, d, T.STAGE_REQUESTED, req, nxt, req.attempt, stage=nxt)
    expected = timedelta(seconds=await expected_seconds(ctx, d.kind, nxt))
    g = gate(ctx.need_fleet(), d.target, now, expected)
    if g.ok or g.retry_at is None:  # never fitting is the stage function's to report (stage.failed)
        return [requested]
    ctx.log.info("advance.waiting", stage=nxt, reason=g.reason, until=iso(g.retry_at))
    return [Delayed(requested, ctx.clock.real_delay((g.retry_at - now).total_seconds()))]


async def _cancelled(event: Input, d: StageFailed, rid: str, run: Value, ctx: Context) -> list[Emitted]:
    """A stage refused to begin because the run was cancelled: the run ends ``cancelled``."""
    cancel = run.get("cancel_requested") or {}
    by, reason = cancel.get("cancelled_by", "someone"), cancel.get("reason", "") or d.message
    if run.get("state") == RunState.CANCELLED:  # a replay: the outcome the first delivery wrote
        return [run_cancelled(rid, {**run, "kind": d.kind}, by=by, reason=reason)]
    if run.get("state") in TERMINAL:
        ctx.log.info("advance.dropped", reason=f"run is {run.get('state')}")
        return []
    run = await ctx.store.ledger.end_run(
        rid, RunState.CANCELLED, ended_at=iso(ctx.clock.now()), cancelled_by=by, cancelled_at_stage=d.stage
    )
    crashpoints.hit("advance.ended")
    return [run_cancelled(rid, {**run, "kind": d.kind}, by=by, reason=reason)]


def _succeeded(event: Input, d: _Run, from_version: str) -> Event[UpgradeSucceeded]:
    done = UpgradeSucceeded(target=d.target, kind=d.kind, from_version=from_version, to_version=d.to_version)
    return in_run(event, d, T.UPGRADE_SUCCEEDED, done)


def _failed(
    event: Input, d: _Run, run: Value, from_version: str, code: str, message: str
) -> Event[UpgradeFailed]:
    """The run's ``upgrade.failed``, from what the ledger holds (the first failure's words; the
    input's ``code``/``message`` where it holds none)."""
    failed = UpgradeFailed(
        target=d.target,
        kind=d.kind,
        from_version=from_version,
        to_version=d.to_version,
        stage=run.get("failed_stage") or d.stage or "",
        code=run.get("code") or code or "failed",
        message=run.get("message") or message or "failed",
    )
    return in_run(event, d, T.UPGRADE_FAILED, failed)


async def _dead_lettered(event: Input, d: DeadLettered, ctx: Context) -> list[Emitted]:
    """A dead letter of a run's event fails the run (unless it already ended)."""
    if d.target is None or d.kind is None or d.to_version is None:
        ctx.log.warning("advance.dead_letter_without_run", consumer=d.consumer, event_type=d.event_type)
        return []
    ref = _Lettered(d.target, d.kind, d.stage, d.to_version)
    rid = event.runid or run_id(ref.target, ref.to_version)
    ledger = ctx.store.ledger
    run = await ledger.run(rid)
    if run is None:
        ctx.log.warning("advance.dead_letter_of_unknown_run", run=rid, consumer=d.consumer)
        return []
    state = run.get("state")
    from_version = run.get("from_version") or _fleet_version(ctx, ref.target) or ""
    if state == RunState.FAILED and run.get("code") == "dead_letter":  # a replay of our own write
        return [_failed(event, ref, run, from_version, "", "")]
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
    return [_failed(event, ref, run, from_version, "", "")]


def _fleet_version(ctx: Context, target: str) -> str | None:
    try:
        return ctx.need_fleet().target(target).version
    except KeyError:
        return None
