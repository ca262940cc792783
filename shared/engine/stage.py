"""What every stage function shares: window gate, claim → one call → record, reconcile, emit.

A stage function is ``run_stage(CALL, event, ctx)`` where ``CALL`` is a :class:`VendorCall`
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
  call): ask the vendor (:meth:`VendorCall.find_existing`) and adopt what it shows. Not before
  the vendor has settled (the client's ``reconcile.settle_s`` after the call may last have been
  in flight: the claim's age past the client's retry deadline + timeout, or the in-doubt mark),
  and the call is made again only when two settled looks ``look_gap_s`` apart found nothing;
* a transient error that certainly did not reach the vendor releases the claim and retries; a
  permanent one (vendor refusal, auth, client-side validation) — and a permanent error while
  reconciling (the target is gone, auth) — refuses the claim and becomes ``stage.failed`` with
  the vendor's code, message and request id.

"Recent" compares vendor timestamps with the vendor's clock: the claim keeps the vendor's time
at claim, learnt from its ``Date`` header (:class:`Since`), so a skewed vendor clock neither
hides our own failed task nor adopts an old one.

Consequence ids are scoped to the run (``runid``, type, stage, …), not to the input event: a
duplicate of an input with a *different* id still emits exactly the same events, so a pipeline
fed every event twice converges to one chain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from events.catalog import JobPoll, StageFailed, StageRequested, StageStarted, StageSucceeded, T
from events.envelope import Event, consequence_id
from shared import crashpoints
from shared.bus.base import Delayed, Emitted
from shared.clock import Clock
from shared.clouds.errors import CloudError, TransientCloudError
from shared.domain.stages import UPGRADE_STAGES, expected_duration, run_id
from shared.domain.versions import BadVersion, compare, on_track
from shared.domain.windows import gate
from shared.errors import ConfigError, Conflict, RetryLater
from shared.runtime.function import Context
from shared.store.claims import Claim, claim_key
from shared.store.ledger import RUNS, TERMINAL, RunState, mutate

__all__ = [
    "ALREADY_DONE",
    "TERMINAL_RUN_STATES",
    "Done",
    "Job",
    "JobStatus",
    "Refused",
    "Since",
    "VendorCall",
    "consequence",
    "expected_seconds",
    "iso",
    "names",
    "note",
    "poll_delay",
    "reached",
    "recent",
    "run_stage",
    "stage_failed",
    "stage_succeeded",
    "target_options",
    "vendor_now",
]

#: A run in one of these states takes no further stage (kept under this name for the stage modules).
TERMINAL_RUN_STATES = TERMINAL
#: First status look at this share of the expected duration, then every STEP of it (or of the
#: elapsed time once past it), never more often than FLOOR domain seconds. With a fair estimate a
#: job takes ~3 looks, and completion is noticed within ~10% of its duration.
FIRST_LOOK, STEP, FLOOR = 0.9, 0.1, 5.0
#: A job whose progress has not changed for this many expected durations is stuck.
STUCK_AFTER = 3.0
#: Domain seconds a vendor stamp may precede the vendor's clock at claim and still be ours: the
#: ``Date`` header's one-second resolution, the answer's transit, and the vendor's own clocks.
CLOCK_MARGIN = 60.0
#: Without any ``Date`` from the vendor we compare with our own clock, and allow this much skew.
UNKNOWN_SKEW_MARGIN = 15 * 60.0


@dataclass(frozen=True, slots=True)
class Job:
    """The vendor accepted the call and runs a job: follow ``job_id`` with ``job.poll``."""

    job_id: str


@dataclass(frozen=True, slots=True)
class Done:
    """The stage is complete without a job to follow (synchronous call, or nothing left to do)."""

    job_id: str | None = None


#: ``find_existing``'s answer when the target already runs the version: nothing to call.
ALREADY_DONE = Done("already-done")


class Refused(Exception):
    """A synchronous call answered "no" (a failed check): the stage fails with this code."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One status reading. ``progress`` is any text that changes while the job moves."""

    state: Literal["running", "succeeded", "failed"]
    progress: str = ""
    reason: str = ""
    code: str = "job.failed"


class VendorCall:
    """The vendor-specific half of one stage function. Subclasses set ``kind`` and ``stage``."""

    kind: ClassVar[str]
    stage: ClassVar[str]
    #: True for calls that start something at the vendor: claimed, recorded, reconciled.
    claimed: ClassVar[bool] = True
    #: True when a second call is harmless (a check that changes nothing): a lost answer is
    #: reconciled by calling again as soon as the first call cannot be in flight any more.
    safe_to_repeat: ClassVar[bool] = False

    def client(self, clouds: Any) -> Any:
        raise NotImplementedError

    async def start(self, client: Any, target: Any, req: StageRequested) -> Job | Done:
        """The ONE vendor call. Raise :class:`Refused` for a synchronous negative answer."""
        raise NotImplementedError

    async def find_existing(
        self, client: Any, target: Any, req: StageRequested, since: Since
    ) -> Job | Done | None:
        """What an earlier attempt (claimed at ``since``) may have started: the job to adopt,
        ``Done``/``ALREADY_DONE`` when nothing is left to do, None when the vendor shows nothing.
        A vendor error raised here is the answer: transient → look again later; permanent →
        the stage fails with it."""
        return None

    async def status(self, client: Any, target: Any, poll: JobPoll) -> JobStatus:
        """ONE status call for a job this call started (used by ``track_job``)."""
        raise NotImplementedError(f"{self.kind}/{self.stage} starts no job to follow")


# -- small shared helpers -----------------------------------------------------------------------


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def vendor_now(client: Any, clock: Clock) -> float | None:
    """The vendor's clock now (as its last ``Date`` header tells), or None before any answer."""
    epoch = getattr(client, "vendor_epoch", None)
    return None if epoch is None else epoch(clock.speed)


@dataclass(frozen=True, slots=True)
class Since:
    """When a claim was taken, in the vendor's clock (DESIGN §6.7: skew learnt from ``Date``).

    ``vendor_at`` was read at claim time when the client had heard from the vendor; otherwise the
    skew is learnt now, from the answers of the reconcile's own look (called after it)."""

    domain_at: float
    vendor_at: float | None
    client: Any
    clock: Clock

    def vendor_epoch(self) -> tuple[float, float]:
        """(the claim's instant in the vendor's clock, the margin to allow around it)."""
        if self.vendor_at is not None:
            return float(self.vendor_at), CLOCK_MARGIN
        now = vendor_now(self.client, self.clock)
        if now is None:
            return self.domain_at, UNKNOWN_SKEW_MARGIN
        return self.domain_at + (now - self.clock.timestamp()), CLOCK_MARGIN


def recent(stamp: str | None, since: Since) -> bool:
    """Did a vendor object created at ``stamp`` (vendor clock) possibly come from a call claimed
    at ``since``? Unknown or unparsable stamps count as recent: adopting is the safe side."""
    if not stamp:
        return True
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return True
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    claimed, margin = since.vendor_epoch()
    return at.timestamp() >= claimed - margin


def target_options(target: Any, block: str) -> Any:
    """The target's ``block`` options (``targets[].oceanbase`` …), checked against the target as
    at fleet load: a target built another way is refused before any call, naming the field."""
    options = getattr(target, block)
    try:
        options.check_target(target)
    except ValueError as exc:
        raise ConfigError(f"targets[{target.name}]", str(exc)) from None
    return options


def reached(kind: str, current: str | None, to: str) -> bool:
    """Does a target running ``current`` already run ``to`` (or newer)?"""
    if not current:
        return False
    try:
        return compare(kind, current, to) >= 0
    except BadVersion:
        return current == to


def names(kind: str, version: str | None, to: str) -> bool:
    """Is ``version`` (as a vendor spells it in a task) what we asked for with ``to``? ``to`` may
    name a line (``v1.29``) that the vendor resolved to a full version (``v1.29.3-r0``)."""
    if not version:
        return False
    try:
        return compare(kind, version, to) == 0 or on_track(kind, version, to)
    except BadVersion:
        return version == to


async def expected_seconds(ctx: Context, kind: str, stage: str) -> float:
    history = await ctx.store.ledger.durations(kind, stage)
    return expected_duration(kind, stage, history=history, fleet=ctx.fleet).total_seconds()


def poll_delay(expected_s: float, elapsed_s: float) -> float:
    """Domain seconds until the next status look, ``elapsed_s`` after the job started."""
    first = FIRST_LOOK * expected_s
    if elapsed_s < first:
        return max(FLOOR, first - elapsed_s)
    return max(FLOOR, STEP * max(expected_s, elapsed_s))


async def note(
    ctx: Context,
    rid: str,
    stage: str,
    *,
    calls: int = 0,
    status_calls: int = 0,
    upgrade: bool = False,
    **fields: Any,
) -> None:
    """Merge ``fields`` into the run's stage entry and bump its counters, in one compare-and-set."""

    def change(cur: dict[str, Any] | None) -> dict[str, Any]:
        base = cur or {"id": rid, "stages": {}, "created_at": time.time()}
        stages = dict(base.get("stages", {}))
        entry = {**stages.get(stage, {}), **fields}
        if calls:
            entry["calls"] = entry.get("calls", 0) + calls
        if status_calls:
            entry["status_calls"] = entry.get("status_calls", 0) + status_calls
        stages[stage] = entry
        out = {**base, "stages": stages, "updated_at": time.time()}
        if calls and upgrade:
            out["upgrade_calls"] = out.get("upgrade_calls", 0) + calls
        if status_calls:
            out["status_calls"] = out.get("status_calls", 0) + status_calls
        return out

    await mutate(ctx.store.kv, RUNS, rid, change, outbox=True)


# -- events -------------------------------------------------------------------------------------


def consequence(event: Event, type_: str, data: BaseModel, *parts: object, stage: str | None = None) -> Event:
    """An event caused by ``event`` in run ``runid``; its id depends on the run and ``parts`` only."""
    d: Any = event.data
    rid = event.runid or run_id(d.target, d.to_version)
    return Event(
        type=type_,
        id=consequence_id(rid, type_, *parts),
        subject=event.subject,
        runid=rid,
        target=d.target,
        kind=d.kind,
        stage=stage if stage is not None else d.stage,
        data=data,
    )


def stage_succeeded(event: Event, job_id: str | None) -> Event:
    d: Any = event.data
    data = StageSucceeded(target=d.target, kind=d.kind, stage=d.stage, to_version=d.to_version, job_id=job_id)
    return consequence(event, T.STAGE_SUCCEEDED, data, d.stage)


def stage_failed(
    event: Event, code: str, message: str, *, job_id: str | None = None, request_id: str | None = None
) -> Event:
    d: Any = event.data
    data = StageFailed(
        target=d.target,
        kind=d.kind,
        stage=d.stage,
        to_version=d.to_version,
        code=code or "unknown",
        message=message or code or "failed",
        job_id=job_id,
        request_id=request_id,
    )
    return consequence(event, T.STAGE_FAILED, data, d.stage)


def _started(
    event: Event[StageRequested], job_id: str, started_at: datetime, expected_s: float, ctx: Context
) -> list[Emitted]:
    d = event.data
    started = StageStarted(
        target=d.target,
        kind=d.kind,
        stage=d.stage,
        to_version=d.to_version,
        job_id=job_id,
        started_at=started_at,
    )
    poll = JobPoll(
        target=d.target,
        kind=d.kind,
        stage=d.stage,
        to_version=d.to_version,
        job_id=job_id,
        poll=1,
        started_at=started_at,
        last_progress_at=started_at,
    )
    elapsed = (ctx.clock.now() - started_at).total_seconds()
    return [
        consequence(event, T.STAGE_STARTED, started, d.stage),
        Delayed(
            consequence(event, T.JOB_POLL, poll, d.stage, 1),
            ctx.clock.real_delay(poll_delay(expected_s, elapsed)),
        ),
    ]


# -- the stage function body --------------------------------------------------------------------


@dataclass
class _Attempt:
    call: VendorCall
    event: Event[StageRequested]
    ctx: Context
    target: Any
    rid: str
    expected_s: float
    client: Any = None

    @property
    def req(self) -> StageRequested:
        return self.event.data

    @property
    def key(self) -> str:
        return claim_key(self.req.target, self.req.stage, self.req.to_version)

    @property
    def owner(self) -> str:
        return f"{self.ctx.function}/{self.event.id}"

    @property
    def upgrade(self) -> bool:
        return self.req.stage in UPGRADE_STAGES

    async def fail(
        self, code: str, message: str, *, request_id: str | None = None, calls: int = 0
    ) -> list[Emitted]:
        now = iso(self.ctx.clock.now())
        await note(
            self.ctx,
            self.rid,
            self.req.stage,
            calls=calls,
            upgrade=self.upgrade,
            state="failed",
            ended_at=now,
            code=code,
            message=message,
        )
        crashpoints.hit("stage.noted")
        return [stage_failed(self.event, code, message, request_id=request_id)]

    async def refuse(
        self, claim: Claim | None, code: str, message: str, request_id: str | None, *, calls: int
    ) -> list[Emitted]:
        """The vendor said no: the claim remembers it first, so a redelivery fails the same way."""
        if claim is not None:
            try:
                await self.ctx.store.claims.refuse(claim, code, message, request_id)
            except Conflict:
                raise RetryLater(0.2, "claim changed while refusing") from None
            crashpoints.hit("stage.recorded")
        self.ctx.log.warning("stage.refused", code=code, request_id=request_id)
        return await self.fail(code, message, request_id=request_id, calls=calls)

    async def accept(
        self, result: Job | Done, claim: Claim | None, *, adopted: bool = False, calls: int = 0
    ) -> list[Emitted]:
        """Record the outcome on the claim, then in the ledger; the events that follow it."""
        sync = isinstance(result, Done)
        if claim is not None:
            try:
                await self.ctx.store.claims.record(
                    claim, result.job_id or "", {"sync": sync, "adopted": adopted}
                )
            except Conflict:  # another delivery reconciled it meanwhile: its record wins, replay it
                raise RetryLater(0.2, "claim changed while recording") from None
            crashpoints.hit("stage.recorded")
        now = self.ctx.clock.now()
        if sync:
            await note(
                self.ctx,
                self.rid,
                self.req.stage,
                calls=calls,
                upgrade=self.upgrade,
                state="succeeded",
                job_id=result.job_id,
                ended_at=iso(now),
            )
            crashpoints.hit("stage.noted")
            return [stage_succeeded(self.event, result.job_id)]
        await note(
            self.ctx,
            self.rid,
            self.req.stage,
            calls=calls,
            upgrade=self.upgrade,
            state="running",
            job_id=result.job_id,
            started_at=iso(now),
            in_doubt=False,
        )
        crashpoints.hit("stage.noted")
        return _started(self.event, result.job_id, now, self.expected_s, self.ctx)

    async def invoke(self, claim: Claim | None) -> list[Emitted]:
        """The one vendor call, its errors mapped per the module contract."""
        ctx, req = self.ctx, self.req
        try:
            result = await self.call.start(self.client, self.target, req)
        except Refused as exc:
            return await self.refuse(claim, exc.code, exc.message, exc.request_id, calls=1)
        except ConfigError as exc:  # refused before anything was sent
            await self._release(claim)
            return await self.fail("config", str(exc))
        except CloudError as exc:
            reached_vendor = exc.status is not None
            if exc.conflict and claim is not None:
                return await self.conflicted(claim, exc)
            if isinstance(exc, TransientCloudError):
                if exc.maybe_applied and claim is not None:
                    # The vendor may have started it: the claim says so before anything else, and
                    # nobody calls again until the vendor has settled and been looked at twice.
                    await ctx.store.claims.in_doubt(claim)
                    crashpoints.hit("stage.recorded")
                    await note(ctx, self.rid, req.stage, calls=1, upgrade=self.upgrade, in_doubt=True)
                    ctx.log.warning("stage.call_in_doubt", code=exc.code, request_id=exc.request_id)
                    raise RetryLater(self.client.reconcile.settle_s, f"answer lost: {exc}") from exc
                await self._release(claim)
                if exc.retry_after is not None:
                    raise RetryLater(exc.retry_after, str(exc)) from exc
                raise
            # permanent: refused by the vendor, auth, or client-side validation
            code = exc.code or f"http.{exc.status}"
            return await self.refuse(claim, code, exc.message, exc.request_id, calls=int(reached_vendor))
        crashpoints.hit("stage.called")
        return await self.accept(result, claim, calls=1)

    async def conflicted(self, claim: Claim, exc: CloudError) -> list[Emitted]:
        """ "Already in progress / exists": possibly our own earlier call. Look before failing."""
        conflict = {
            "code": exc.code or f"http.{exc.status}",
            "message": exc.message,
            "request_id": exc.request_id,
            "transient": isinstance(exc, TransientCloudError),
        }
        claim = await self.ctx.store.claims.in_doubt(claim, conflict=conflict)
        crashpoints.hit("stage.recorded")
        await note(self.ctx, self.rid, self.req.stage, calls=1, upgrade=self.upgrade, in_doubt=True)
        self.ctx.log.info("stage.conflict", code=conflict["code"], request_id=exc.request_id)
        return await self.reconcile(claim, look_now=True)

    async def _release(self, claim: Claim | None) -> None:
        if claim is not None:
            await self.ctx.store.claims.release(claim)

    async def replay(self, claim: Claim, stage_entry: dict[str, Any]) -> list[Emitted]:
        """The claim was recorded by an earlier delivery: emit what it emitted, call nothing.
        The ledger is brought level first (the earlier delivery may have died before it)."""
        result = claim.result or {}
        if result.get("sync"):
            if stage_entry.get("state") != "succeeded":
                await note(self.ctx, self.rid, self.req.stage, state="succeeded", job_id=claim.job_id or None)
            return [stage_succeeded(self.event, claim.job_id or None)]
        if stage_entry.get("started_at"):
            started_at = datetime.fromisoformat(stage_entry["started_at"].replace("Z", "+00:00"))
        else:
            started_at = self.ctx.clock.now()
            await note(
                self.ctx,
                self.rid,
                self.req.stage,
                state="running",
                job_id=claim.job_id,
                started_at=iso(started_at),
            )
        return _started(self.event, claim.job_id or "", started_at, self.expected_s, self.ctx)

    async def replay_refusal(self, claim: Claim, stage_entry: dict[str, Any]) -> list[Emitted]:
        """The claim was refused by an earlier delivery: fail the stage again, call nothing."""
        r = claim.refusal or {}
        code, message = str(r.get("code") or "refused"), str(r.get("message") or "refused")
        if stage_entry.get("state") != "failed":
            await note(self.ctx, self.rid, self.req.stage, state="failed", code=code, message=message)
        return [stage_failed(self.event, code, message, request_id=r.get("request_id"))]

    async def reconcile(self, claim: Claim, *, look_now: bool = False) -> list[Emitted]:
        """Claimed, never recorded: ask the vendor what happened instead of calling again.

        Not before the vendor has settled (``settle_s`` after the call may last have been in
        flight); the call is made again only when two settled looks, ``look_gap_s`` apart, both
        found nothing. ``look_now`` (after an "already in progress") looks once at once, too."""
        ctx = self.ctx
        policy = self.client.reconcile
        now = time.time()
        if claim.in_doubt_at is not None:
            quiet_since = float(claim.in_doubt_at)
        else:
            # The first caller may still be inside its call: it cannot be once its retry deadline
            # and timeout have passed since it claimed.
            quiet_since = claim.claimed_at + self._lease()
            if now < quiet_since:
                # Look back well before the end: the first caller usually records within a second,
                # and this duplicate then replays its events (halving: few delivery attempts).
                left = quiet_since - now
                raise RetryLater(max(0.2, min(left, max(1.0, left / 2))), "claim held by a call in flight")
        settled_at = quiet_since + (0.0 if self.call.safe_to_repeat else policy.settle_s)
        settled = [t for t in claim.looks if t >= settled_at]
        if not look_now:
            if now < settled_at:
                raise RetryLater(settled_at - now, "waiting for the vendor to settle")
            if settled and now - settled[-1] < policy.look_gap_s:
                raise RetryLater(policy.look_gap_s - (now - settled[-1]), "waiting to look again")
        since = Since(claim.domain_at, claim.vendor_at, self.client, ctx.clock)
        try:
            found = await self.call.find_existing(self.client, self.target, self.req, since)
        except TransientCloudError as exc:
            if exc.retry_after is not None:
                raise RetryLater(exc.retry_after, str(exc)) from exc
            raise
        except CloudError as exc:  # permanent (not found, auth): retrying will not change the answer
            return await self.refuse(
                claim, exc.code or f"http.{exc.status}", exc.message, exc.request_id, calls=0
            )
        ctx.log.info(
            "stage.reconciled",
            found=repr(found),
            looks=len(settled),
            in_doubt=claim.in_doubt_at is not None,
            claim_age_s=round(now - claim.claimed_at, 3),
        )
        if found is not None:
            return await self.accept(found, claim, adopted=True)
        decisive = self.call.safe_to_repeat or (
            now >= settled_at and bool(settled) and now - settled[-1] >= policy.look_gap_s
        )
        if not decisive:
            try:
                await ctx.store.claims.looked(claim)
            except Conflict:
                raise RetryLater(0.2, "claim changed while reconciling") from None
            wait = max(policy.look_gap_s, settled_at - now) if now >= settled_at else settled_at - now
            raise RetryLater(max(0.05, wait), "vendor shows nothing yet; looking again")
        if claim.conflict and not claim.conflict.get("transient"):
            # The vendor refused for good and nothing of ours is there: its refusal stands.
            c = claim.conflict
            return await self.refuse(claim, c["code"], c["message"], c.get("request_id"), calls=0)
        # Two looks agree nothing started: take the claim over (compare-and-set) and call.
        try:
            await ctx.store.claims.release(claim)
        except Conflict:
            raise RetryLater(0.2, "claim changed while reconciling") from None
        fresh = await ctx.store.claims.claim(
            self.key,
            self.owner,
            domain_at=ctx.clock.timestamp(),
            vendor_at=vendor_now(self.client, ctx.clock),
        )
        if not fresh.won:
            raise RetryLater(0.2, "claim taken while reconciling")
        crashpoints.hit("stage.claimed")
        return await self.invoke(fresh)

    def _lease(self) -> float:
        default = self.client.retry.deadline + self.client.limits.total_timeout
        return float(self.ctx.settings.get("claim_lease_s", default))


async def run_stage(call: VendorCall, event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """The body of every stage function (see the module docstring for the contract)."""
    req = event.data
    rid = event.runid or run_id(req.target, req.to_version)
    try:
        target = ctx.fleet.target(req.target)
    except KeyError:
        return [stage_failed(event, "unknown_target", f"target {req.target!r} is not in the fleet")]
    ledger = ctx.store.ledger
    run = await ledger.run(rid)
    stage_entry = (run or {}).get("stages", {}).get(req.stage, {})
    if stage_entry.get("state") == "succeeded":
        return [stage_succeeded(event, stage_entry.get("job_id"))]
    expected_s = await expected_seconds(ctx, req.kind, req.stage)
    attempt = _Attempt(call, event, ctx, target, rid, expected_s)
    if run is not None and run.get("state") in TERMINAL_RUN_STATES:
        # A late duplicate: what this stage committed is replayed (the bus drops the copies);
        # a stage that never ran for this run (cancelled, superseded) starts nothing now.
        done = await ctx.store.claims.get(attempt.key) if call.claimed else None
        if done is not None and done.state == "recorded":
            return await attempt.replay(done, stage_entry)
        if done is not None and done.state == "refused":
            return await attempt.replay_refusal(done, stage_entry)
        ctx.log.info("stage.skipped", reason=f"run is {run['state']}")
        return []

    now = ctx.clock.now()
    g = gate(ctx.fleet, target, now, timedelta(seconds=expected_s))
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
        await note(ctx, rid, req.stage, state="waiting", waiting_until=iso(g.retry_at), reason=g.reason)
        again = consequence(event, T.STAGE_REQUESTED, req, req.stage, req.attempt, "window", iso(g.retry_at))
        return [Delayed(again, ctx.clock.real_delay((g.retry_at - now).total_seconds()))]
    if run is not None and run.get("state") != RunState.RUNNING:
        await ledger.start_run(rid)

    try:
        attempt.client = call.client(ctx.clouds)
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
