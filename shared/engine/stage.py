"""What every stage function shares: window gate, claim → one call → record, reconcile, emit.

A stage function is ``run_stage(CALL, event, ctx)`` where ``CALL`` is a :class:`~shared.engine.contract.VendorCall`
holding only the vendor-specific bits: which client, how to start, how to find a start that
may already have happened, and how to read a job's status (for ``track_job``).

The contract (DESIGN §6.2, §6.7), for a call with ``claimed = True``:

* the stage's claim ``(target, stage, to_version)`` is taken in the store *before* the call;
* won → exactly one vendor call → the claim records the outcome → the ledger notes it →
  ``stage.started`` and a delayed ``job.poll`` (or ``stage.succeeded`` for a synchronous call);
* **handlers are replays**: every write above comes before the outbox commits, so every one
  of them makes a redelivery emit the same events with the same ids, never nothing and never
  a second call — recorded → the same ``stage.started``/``stage.succeeded``; refused → the
  same ``stage.failed``; the ledger is brought level if the earlier delivery died before it;
* claimed but never recorded → the earlier attempt died around the call, its answer was lost
  (``in_doubt``), or the vendor said "already in progress" (a conflict, maybe with our own
  call): ask the vendor (:meth:`~shared.engine.contract.VendorCall.find_existing`) and adopt what it shows. Not before
  the vendor has settled (the client's ``reconcile.settle_s`` after the call may last have been
  in flight: the claim's age past the client's retry deadline + timeout, or the in-doubt mark),
  and the call is made again only when two settled looks ``look_gap_s`` apart found nothing;
* a transient error that certainly did not reach the vendor releases the claim and retries; a
  permanent one (vendor refusal, auth, client-side validation) — and a permanent error while
  reconciling (the target is gone, auth) — refuses the claim and becomes ``stage.failed`` with
  the vendor's code, message and request id.

"Recent" compares vendor timestamps with the vendor's clock: the claim keeps the vendor's time
at claim, learnt from its ``Date`` header (:class:`~shared.engine.vendor_clock.Since`), so a
skewed vendor clock neither hides our own failed task nor adopts an old one.

Consequence ids are scoped to the run (``runid``, type, stage, …), not to the input event: a
duplicate of an input with a *different* id still emits exactly the same events, so a pipeline
fed every event twice converges to one chain (:mod:`shared.engine.consequences`).

The engine's rooms: :mod:`~shared.engine.contract` (what a ``VendorCall`` fills in),
:mod:`~shared.engine.attempt` (claim → call → record → reconcile), :mod:`~shared.engine.consequences`
(the events), :mod:`~shared.engine.polling` (when to look at a job), :mod:`~shared.engine.vendor_clock`
("recent" in the vendor's clock), :mod:`~shared.engine.calls` (a stage's call, found from the manifest).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from events.catalog import StageRequested
from events.envelope import Event
from shared import crashpoints
from shared.bus.base import Emitted
from shared.clouds.client import BaseClient
from shared.domain.stages import run_id
from shared.domain.windows import gate
from shared.engine.attempt import Attempt
from shared.engine.consequences import stage_failed, stage_succeeded, stage_waiting
from shared.engine.contract import VendorCall
from shared.engine.control import hold_if_paused
from shared.engine.polling import expected
from shared.engine.vendor_clock import iso, vendor_now
from shared.errors import ConfigError
from shared.runtime.function import Context
from shared.store.ledger import TERMINAL, RunState

__all__ = ["run_stage"]

C = TypeVar("C", bound=BaseClient)


async def run_stage(call: VendorCall[C], event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """The body of every stage function (see the module docstring for the contract)."""
    req = event.data
    rid = event.runid or run_id(req.target, req.to_version)
    try:
        target = ctx.need_fleet().target(req.target)
    except KeyError:
        return [stage_failed(event, "unknown_target", f"target {req.target!r} is not in the fleet")]
    ledger = ctx.store.ledger
    run = await ledger.run(rid)
    stage_entry = (run or {}).get("stages", {}).get(req.stage, {})
    if stage_entry.get("state") == "succeeded":
        return [stage_succeeded(event, stage_entry.get("job_id"))]
    exp = await expected(ctx, req.kind, req.stage)
    attempt = Attempt(call, event, ctx, target, rid, exp)
    if run is not None and run.get("state") in TERMINAL:
        # A late duplicate: what this stage committed is replayed (the bus drops the copies);
        # a stage that never ran for this run (cancelled, superseded) starts nothing now.
        done = await ctx.store.claims.get(attempt.key) if call.claimed else None
        if done is not None and done.state == "recorded":
            return await attempt.replay(done, stage_entry)
        if done is not None and done.state == "refused":
            return await attempt.replay_refusal(done, stage_entry)
        ctx.log.info("stage.skipped", reason=f"run is {run['state']}")
        return []

    if stage_entry.get("state") in (None, "waiting"):
        # the stage has not begun (at most waited for its window): a cancel or a pause may still
        # keep it from starting
        cancel = (run or {}).get("cancel_requested")
        if cancel and "upgrade" not in (run or {}).get("stages", {}):
            by = cancel.get("cancelled_by", "someone")
            return [stage_failed(event, "cancelled", f"cancelled by {by} before the upgrade stage began")]
        facts = {"target": target.name, "kind": target.kind, "window": target.window, "wave": target.wave}
        scope = await hold_if_paused(ctx.store.kv, rid, facts, event)
        if scope is not None:
            ctx.log.info("stage.held", reason=f"paused ({scope})")
            return []

    now = ctx.clock.now()
    g = gate(ctx.need_fleet(), target, now, timedelta(seconds=exp.typical_s))
    if run is None:
        await ledger.open_run(
            rid,
            target=req.target,
            kind=req.kind,
            from_version=req.from_version,
            to_version=req.to_version,
            window=target.window,
            wave=target.wave,
            state=RunState.RUNNING if g.ok else RunState.PLANNED,
            upgrade_calls=0,
            status_calls=0,
        )
    if not g.ok:
        if g.retry_at is None:
            return await attempt.fail("window", g.reason)
        await ledger.note_stage(
            rid, req.stage, state="waiting", waiting_until=iso(g.retry_at), reason=g.reason
        )
        return [stage_waiting(event, g.retry_at, now, ctx.clock)]
    if run is not None and run.get("state") != RunState.RUNNING:
        await ledger.start_run(rid)

    clouds = ctx.need_clouds()  # a process without clients fails the delivery, not the stage
    try:
        attempt.vendor = call.client(clouds)
    except ConfigError as exc:
        return await attempt.fail("config", str(exc))
    if not call.claimed:
        return await attempt.invoke(None)
    claim = await ctx.store.claims.claim(
        attempt.key,
        attempt.owner,
        domain_at=ctx.clock.timestamp(),
        vendor_at=vendor_now(attempt.client, ctx.clock),
    )
    if claim.won:
        crashpoints.hit("stage.claimed")
        return await attempt.invoke(claim)
    if claim.state == "recorded":
        return await attempt.replay(claim, stage_entry)
    if claim.state == "refused":
        return await attempt.replay_refusal(claim, stage_entry)
    return await attempt.reconcile(claim)
