"""track_job (``job.poll``): ONE status call on a vendor job, then the next look or the outcome.

* running → ``job.poll`` again, delayed per :func:`shared.engine.stage.poll_delay` (first
  look near the expected end, then every ~10% of the expected/elapsed time, at least 5 s of
  domain time) — a few looks per job, completion noticed within ~10% of its duration;
* succeeded → ``stage.succeeded``; the stage's duration goes into the ledger's history, which
  later expected durations (and so the poll schedule and the window gate) are drawn from;
* failed → ``stage.failed`` with the vendor's reason;
* no progress for ``STUCK_AFTER`` × the expected duration → ``stage.failed`` (code ``stuck``).

Every look counts in the ledger (``status_calls`` of the run and of the stage). A transient
error of the status call is retried by the bus; a permanent one fails the stage.
"""

from __future__ import annotations

from events.catalog import JobPoll, T
from events.envelope import Event
from functions.stages import call_for
from shared import crashpoints
from shared.bus.base import Delayed, Emitted
from shared.clouds.errors import CloudError, TransientCloudError
from shared.domain.stages import run_id
from shared.engine.stage import (
    STUCK_AFTER,
    VendorCall,
    consequence,
    expected_seconds,
    iso,
    note,
    poll_delay,
    stage_failed,
    stage_succeeded,
)
from shared.errors import RetryLater
from shared.runtime.function import Context, upshift_function
from shared.store.ledger import TERMINAL

__all__ = ["track_job"]


@upshift_function
async def track_job(event: Event[JobPoll], ctx: Context) -> list[Emitted]:
    poll = event.data
    rid = event.runid or run_id(poll.target, poll.to_version)
    call = call_for(poll.kind, poll.stage)
    if call is None:
        return [stage_failed(event, "unknown_stage", f"no stage {poll.stage!r} for kind {poll.kind!r}")]
    try:
        target = ctx.fleet.target(poll.target)
    except KeyError:
        return [stage_failed(event, "unknown_target", f"target {poll.target!r} is not in the fleet")]
    run = await ctx.store.ledger.run(rid)
    if run is not None and run.get("state") in TERMINAL:
        ctx.log.info("job.poll_dropped", reason=f"run is {run['state']}")
        return []

    # The answer describes the job as it was when we asked: a slow answer is not time without progress.
    asked = ctx.clock.now()
    try:
        status = await call.status(call.client(ctx.clouds), target, poll)
    except TransientCloudError as exc:
        if exc.retry_after is not None:
            raise RetryLater(exc.retry_after, str(exc)) from exc
        raise
    except CloudError as exc:
        if exc.status == 404 and _young(poll, ctx, call):
            # Lists lag (TaurusDB: a new job is queryable "after a few seconds"): not yet, not gone.
            raise RetryLater(max(0.2, call.client(ctx.clouds).reconcile.look_gap_s), str(exc)) from exc
        await note(ctx, rid, poll.stage, status_calls=1, state="failed", code=exc.code, message=exc.message)
        return [stage_failed(event, exc.code, exc.message, job_id=poll.job_id, request_id=exc.request_id)]

    now = ctx.clock.now()
    started = poll.started_at or now
    elapsed = (now - started).total_seconds()
    if status.state == "succeeded":
        await note(ctx, rid, poll.stage, status_calls=1, state="succeeded", ended_at=iso(now))
        await ctx.store.ledger.add_duration(poll.kind, poll.stage, elapsed)
        crashpoints.hit("poll.noted")
        return [stage_succeeded(event, poll.job_id)]
    if status.state == "failed":
        await note(
            ctx,
            rid,
            poll.stage,
            status_calls=1,
            state="failed",
            ended_at=iso(now),
            code=status.code,
            message=status.reason,
        )
        crashpoints.hit("poll.noted")
        return [stage_failed(event, status.code, status.reason, job_id=poll.job_id)]

    expected = await expected_seconds(ctx, poll.kind, poll.stage)
    moved_at = asked if status.progress != poll.last_progress else (poll.last_progress_at or started)
    still = (asked - moved_at).total_seconds()
    if still >= STUCK_AFTER * expected:
        reason = f"no progress for {still:.0f}s (expected the whole stage to take {expected:.0f}s); last: {status.progress}"
        await note(
            ctx,
            rid,
            poll.stage,
            status_calls=1,
            state="failed",
            ended_at=iso(now),
            code="stuck",
            message=reason,
        )
        return [stage_failed(event, "stuck", reason, job_id=poll.job_id)]

    await note(ctx, rid, poll.stage, status_calls=1, progress=status.progress)
    crashpoints.hit("poll.noted")
    nxt = poll.model_copy(
        update={"poll": poll.poll + 1, "last_progress": status.progress, "last_progress_at": moved_at}
    )
    again = consequence(event, T.JOB_POLL, nxt, poll.stage, poll.poll + 1)
    return [Delayed(again, ctx.clock.real_delay(poll_delay(expected, elapsed)))]


def _young(poll: JobPoll, ctx: Context, call: VendorCall) -> bool:
    """Did the job start less than the vendor's settle time ago (real seconds)?"""
    if poll.started_at is None:
        return False
    elapsed_real = (ctx.clock.now() - poll.started_at).total_seconds() / ctx.clock.speed
    return elapsed_real < call.client(ctx.clouds).reconcile.settle_s
