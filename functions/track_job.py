"""track_job (``job.poll``): ONE status call on a vendor job, then the next look or the outcome.

* running → ``job.poll`` again, delayed per :func:`shared.engine.polling.poll_delay` (the first
  look at a low quantile of the (kind, stage)'s history, then every 8 % of the elapsed time, at
  least 5 s of domain time) — completion noticed within max(5 s, 8 %) of the job's length;
* succeeded → ``stage.succeeded``; the stage's duration (:func:`~shared.engine.polling.observed_seconds`:
  the middle of the last interval between looks) goes into the ledger's history, which later
  expectations (and so the poll schedule and the window gate) are drawn from;
* failed → ``stage.failed`` with the vendor's reason;
* no progress for ``STUCK_AFTER`` × the typical duration (never less than × the configured
  one: :attr:`~shared.engine.polling.Expected.stuck_s`) → ``stage.failed`` (code ``stuck``).

A stage has one outcome: the first look that decides records it
(:meth:`~shared.store.ledger.Ledger.settle_stage`), and every later look at the job — a
redelivery, or one running beside it on another worker that read another answer — emits that
outcome (the same id), not its own.

Every look counts in the ledger (``status_calls`` of the run and of the stage). A transient
error of the status call is retried by the bus; a permanent one fails the stage.

The job's status call is the stage function's own ``CALL``, found through the manifest
(:func:`shared.engine.calls.call_for`): this function imports no other function.
"""

from __future__ import annotations

from datetime import datetime

from events.catalog import JobPoll
from events.envelope import Event
from shared import crashpoints
from shared.bus.base import Emitted
from shared.clouds.errors import CloudError, TransientCloudError
from shared.domain.stages import run_id
from shared.engine.calls import JobCall, call_for
from shared.engine.consequences import next_poll, stage_failed, stage_succeeded
from shared.engine.polling import expected, observed_seconds, poll_delay
from shared.engine.vendor_clock import iso
from shared.errors import RetryLater
from shared.runtime.function import Context, upshift_function
from shared.store.ledger import TERMINAL, settled

__all__ = ["track_job"]


@upshift_function
async def track_job(event: Event[JobPoll], ctx: Context) -> list[Emitted]:
    poll = event.data
    rid = event.runid or run_id(poll.target, poll.to_version)
    call = call_for(poll.kind, poll.stage)
    if call is None:
        return [stage_failed(event, "unknown_stage", f"no stage {poll.stage!r} for kind {poll.kind!r}")]
    try:
        target = ctx.need_fleet().target(poll.target)
    except KeyError:
        return [stage_failed(event, "unknown_target", f"target {poll.target!r} is not in the fleet")]
    ledger = ctx.store.ledger
    run = await ledger.run(rid)
    if run is not None and run.get("state") in TERMINAL:
        ctx.log.info("job.poll_dropped", reason=f"run is {run['state']}")
        return []
    entry = ((run or {}).get("stages") or {}).get(poll.stage, {})
    if settled(entry, poll.job_id):  # a replay (or a late look): the outcome given, no new look
        return [_outcome(event, entry)]

    # The answer describes the job as it was when we asked: a slow answer is not time without progress.
    asked = ctx.clock.now()
    try:
        status = await call.poll_status(ctx.need_clouds(), target, poll)
    except TransientCloudError as exc:
        if exc.retry_after is not None:
            raise RetryLater(exc.retry_after, str(exc)) from exc
        raise
    except CloudError as exc:
        if exc.status == 404 and _young(poll, entry, ctx, call):
            # Lists lag (TaurusDB: a new job is queryable "after a few seconds"): not yet, not gone.
            raise RetryLater(max(0.2, call.reconcile_policy(ctx.need_clouds()).look_gap_s), str(exc)) from exc
        return await _failed(ctx, event, rid, exc.code, exc.message, request_id=exc.request_id)

    now = ctx.clock.now()
    started = poll.started_at or now
    elapsed = (now - started).total_seconds()
    if status.state == "succeeded":
        entry = await ledger.settle_stage(
            rid, poll.stage, poll.job_id, status_calls=1, state="succeeded", ended_at=iso(now)
        )
        if entry.get("state") != "succeeded":  # another look at this job decided first
            return [_outcome(event, entry)]
        # the job was done when the vendor was asked: the answer's latency is not the job's
        previous = None if poll.looked_at is None else (poll.looked_at - started).total_seconds()
        took = observed_seconds(
            (asked - started).total_seconds(), poll.poll, await expected(ctx, poll.kind, poll.stage), previous
        )
        await ledger.add_duration(poll.kind, poll.stage, took)
        crashpoints.hit("poll.noted")
        return [stage_succeeded(event, poll.job_id)]
    if status.state == "failed":
        return await _failed(ctx, event, rid, status.code, status.reason)

    exp = await expected(ctx, poll.kind, poll.stage)
    moved_at = asked if status.progress != poll.last_progress else (poll.last_progress_at or started)
    still = (asked - moved_at).total_seconds()
    if still >= exp.stuck_s:
        reason = f"no progress for {still:.0f}s (expected the whole stage to take {max(exp.typical_s, exp.default_s):.0f}s); last: {status.progress}"
        return await _failed(ctx, event, rid, "stuck", reason)

    await ledger.note_stage(rid, poll.stage, status_calls=1, progress=status.progress)
    crashpoints.hit("poll.noted")
    nxt = poll.model_copy(
        update={
            "poll": poll.poll + 1,
            "last_progress": status.progress,
            "last_progress_at": moved_at,
            "looked_at": asked,
        }
    )
    return [next_poll(event, nxt, poll_delay(exp, elapsed), ctx.clock)]


async def _failed(
    ctx: Context, event: Event[JobPoll], rid: str, code: str, message: str, *, request_id: str | None = None
) -> list[Emitted]:
    """The job failed (the vendor says so, its status cannot be read, or it is stuck): the ledger
    notes it, then the same ``stage.failed`` on every delivery."""
    poll = event.data
    entry = await ctx.store.ledger.settle_stage(
        rid,
        poll.stage,
        poll.job_id,
        status_calls=1,
        state="failed",
        ended_at=iso(ctx.clock.now()),
        code=code,
        message=message,
        request_id=request_id,
    )
    crashpoints.hit("poll.noted")
    return [_outcome(event, entry)]


def _outcome(event: Event[JobPoll], entry: dict[str, object]) -> Emitted:
    """The stage's outcome as the ledger holds it (the first look that decided, maybe another)."""
    if entry.get("state") == "succeeded":
        return stage_succeeded(event, event.data.job_id)
    request_id = entry.get("request_id")
    return stage_failed(
        event,
        str(entry.get("code") or "failed"),
        str(entry.get("message") or ""),
        job_id=event.data.job_id,
        request_id=request_id if isinstance(request_id, str) else None,
    )


def _young(poll: JobPoll, entry: dict[str, object], ctx: Context, call: JobCall) -> bool:
    """Did the job's id become known less than the vendor's settle time ago (real seconds)? From
    the later of the job's start and when the stage recorded its id (``known_at``): the call
    that made the job may be a retry seconds after the first send, and lists lag from it."""
    since = [poll.started_at] if poll.started_at is not None else []
    known = entry.get("known_at")
    if isinstance(known, str):
        try:
            since.append(datetime.fromisoformat(known))
        except ValueError:
            pass
    if not since:
        return False
    elapsed_real = (ctx.clock.now() - max(since)).total_seconds() / ctx.clock.speed
    return elapsed_real < call.reconcile_policy(ctx.need_clouds()).settle_s
