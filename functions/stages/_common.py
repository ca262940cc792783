"""What every stage function shares: window gate, claim → one call → record, reconcile, emit.

A stage function is ``run_stage(CALL, event, ctx)`` where ``CALL`` is a :class:`VendorCall`
holding only the vendor-specific bits: which client, how to start, how to find a start that
may already have happened, and how to read a job's status (for ``track_job``).

The contract (DESIGN §6.2), for a call with ``claimed = True``:

* the stage's claim ``(target, stage, to_version)`` is taken in the store *before* the call;
* won → exactly one vendor call → the job id is recorded on the claim → ``stage.started`` and a
  delayed ``job.poll`` (or ``stage.succeeded`` for a synchronous call);
* already recorded → the same events again (same deterministic ids: the bus drops the copies);
* claimed but never recorded → the earlier attempt died around the call, or its answer was lost:
  ask the vendor (:meth:`VendorCall.find_existing`) and adopt what it shows; call again only
  when the vendor shows nothing started. A claim younger than the longest a call can still be in
  flight (the client's retry deadline + timeout) is waited for instead, unless the earlier attempt
  said its answer was lost (``in_doubt``), so two deliveries never both reconcile-and-call;
* a transient error that certainly did not reach the vendor releases the claim and retries;
  one that may have been applied keeps it (the next delivery reconciles); a permanent error
  (vendor refusal, auth, client-side validation) releases it and becomes ``stage.failed``
  with the vendor's code, message and request id.

Consequence ids are scoped to the run (``runid``, type, stage, …), not to the input event: a
duplicate of an input with a *different* id still emits exactly the same events, so a pipeline
fed every event twice converges to one chain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from events.catalog import JobPoll, StageFailed, StageRequested, StageStarted, StageSucceeded, T
from events.envelope import Event, consequence_id
from shared.bus.base import Delayed, Emitted
from shared.clouds.errors import CloudError, TransientCloudError
from shared.errors import ConfigError, Conflict, RetryLater
from shared.function import Context
from shared.stages import UPGRADE_STAGES, expected_duration, run_id
from shared.store.claims import BUCKET as CLAIMS
from shared.store.claims import Claim, claim_key
from shared.store.ledger import RUNS, mutate
from shared.versions import BadVersion, compare, on_track
from shared.windows import gate

__all__ = [
    "ALREADY_DONE",
    "TERMINAL_RUN_STATES",
    "Done",
    "Job",
    "JobStatus",
    "Refused",
    "VendorCall",
    "consequence",
    "expected_seconds",
    "iso",
    "note",
    "names",
    "poll_delay",
    "reached",
    "recent",
    "run_stage",
    "stage_failed",
    "stage_succeeded",
]

#: A run in one of these states takes no further stage (late or duplicate events are dropped).
TERMINAL_RUN_STATES = frozenset({"succeeded", "failed", "halted", "superseded", "cancelled"})
#: First status look at this share of the expected duration, then every STEP of it (or of the
#: elapsed time once past it), never more often than FLOOR domain seconds. With a fair estimate a
#: job takes ~3 looks, and completion is noticed within ~10% of its duration.
FIRST_LOOK, STEP, FLOOR = 0.9, 0.1, 5.0
#: A job whose progress has not changed for this many expected durations is stuck.
STUCK_AFTER = 3.0
#: Vendor timestamps may lag our clock; a job this much older than our claim still counts as ours.
CLOCK_MARGIN = 15 * 60.0


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

    def client(self, clouds: Any) -> Any:
        raise NotImplementedError

    async def start(self, client: Any, target: Any, req: StageRequested) -> Job | Done:
        """The ONE vendor call. Raise :class:`Refused` for a synchronous negative answer."""
        raise NotImplementedError

    async def find_existing(
        self, client: Any, target: Any, req: StageRequested, since: float
    ) -> Job | Done | None:
        """What an earlier attempt (claimed at epoch ``since``) may have started: the job to adopt,
        ``Done``/``ALREADY_DONE`` when nothing is left to do, None when the vendor shows nothing."""
        return None

    async def status(self, client: Any, target: Any, poll: JobPoll) -> JobStatus:
        """ONE status call for a job this call started (used by ``track_job``)."""
        raise NotImplementedError(f"{self.kind}/{self.stage} starts no job to follow")


# -- small shared helpers -----------------------------------------------------------------------


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def recent(stamp: str | None, since: float) -> bool:
    """Did a vendor object created at ``stamp`` possibly come from a call claimed at ``since``?
    Unknown or unparsable stamps count as recent: adopting is the safe side of the doubt."""
    if not stamp:
        return True
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() >= since - CLOCK_MARGIN
    except ValueError:
        return True


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

    await mutate(ctx.store.kv, RUNS, rid, change)


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

    @property
    def req(self) -> StageRequested:
        return self.event.data

    @property
    def key(self) -> str:
        return claim_key(self.req.target, self.req.stage, self.req.to_version)

    @property
    def owner(self) -> str:
        return f"{self.ctx.function}/{self.event.id}"

    async def fail(self, code: str, message: str, *, request_id: str | None = None) -> list[Emitted]:
        now = iso(self.ctx.clock.now())
        await note(
            self.ctx, self.rid, self.req.stage, state="failed", ended_at=now, code=code, message=message
        )
        return [stage_failed(self.event, code, message, request_id=request_id)]

    async def accept(
        self, result: Job | Done, claim: Claim | None, *, adopted: bool = False
    ) -> list[Emitted]:
        """Record the outcome on the claim and in the ledger; the events that follow it."""
        sync = isinstance(result, Done)
        if claim is not None:
            await self.ctx.store.claims.record(claim, result.job_id or "", {"sync": sync, "adopted": adopted})
        now = self.ctx.clock.now()
        if sync:
            await note(
                self.ctx, self.rid, self.req.stage, state="succeeded", job_id=result.job_id, ended_at=iso(now)
            )
            return [stage_succeeded(self.event, result.job_id)]
        await note(
            self.ctx,
            self.rid,
            self.req.stage,
            state="running",
            job_id=result.job_id,
            started_at=iso(now),
            in_doubt=False,
        )
        return _started(self.event, result.job_id, now, self.expected_s, self.ctx)

    async def invoke(self, claim: Claim | None) -> list[Emitted]:
        """The one vendor call, its errors mapped per the module contract."""
        ctx, req = self.ctx, self.req
        upgrade = req.stage in UPGRADE_STAGES
        try:
            client = self.call.client(ctx.clouds)
            result = await self.call.start(client, self.target, req)
        except Refused as exc:
            await note(ctx, self.rid, req.stage, calls=1, upgrade=upgrade)
            await self._release(claim)
            return await self.fail(exc.code, exc.message, request_id=exc.request_id)
        except ConfigError as exc:
            await self._release(claim)
            return await self.fail("config", str(exc))
        except TransientCloudError as exc:
            if exc.maybe_applied:
                # The vendor may have started it: keep the claim; the redelivery reconciles at once.
                await note(ctx, self.rid, req.stage, calls=1, upgrade=upgrade, in_doubt=True)
                ctx.log.warning("stage.call_in_doubt", code=exc.code, request_id=exc.request_id)
                raise
            await self._release(claim)
            if exc.retry_after is not None:
                raise RetryLater(exc.retry_after, str(exc)) from exc
            raise
        except CloudError as exc:  # permanent: refused by the vendor, auth, or client-side validation
            if exc.status is not None:
                await note(ctx, self.rid, req.stage, calls=1, upgrade=upgrade)
            await self._release(claim)
            ctx.log.warning("stage.refused", code=exc.code, status=exc.status, request_id=exc.request_id)
            return await self.fail(exc.code or f"http.{exc.status}", exc.message, request_id=exc.request_id)
        await note(ctx, self.rid, req.stage, calls=1, upgrade=upgrade)
        return await self.accept(result, claim)

    async def _release(self, claim: Claim | None) -> None:
        if claim is not None:
            await self.ctx.store.claims.release(claim)

    def replay(self, claim: Claim, stage_entry: dict[str, Any]) -> list[Emitted]:
        """The claim was recorded by an earlier delivery: emit what it emitted, call nothing."""
        result = claim.result or {}
        if result.get("sync"):
            return [stage_succeeded(self.event, claim.job_id or None)]
        started_at = self.ctx.clock.now()
        if stage_entry.get("started_at"):
            started_at = datetime.fromisoformat(stage_entry["started_at"].replace("Z", "+00:00"))
        return _started(self.event, claim.job_id or "", started_at, self.expected_s, self.ctx)

    async def reconcile(self, claim: Claim, in_doubt: bool) -> list[Emitted]:
        """Claimed, never recorded: ask the vendor what happened instead of calling again."""
        ctx = self.ctx
        entry = await ctx.store.kv.get(CLAIMS, claim.key)
        claimed_at = float((entry.value if entry else {}).get("claimed_at", 0.0))
        client = self.call.client(ctx.clouds)
        lease = float(ctx.settings.get("claim_lease_s", client.retry.deadline + client.limits.total_timeout))
        age = time.time() - claimed_at
        if not in_doubt and age < lease:
            # The first caller may still be inside its call: look again once it cannot be.
            raise RetryLater(
                max(0.2, min(lease - age, max(1.0, (lease - age) / 4))), "claim held by a call in flight"
            )
        found = await self.call.find_existing(client, self.target, self.req, claimed_at)
        ctx.log.info("stage.reconciled", found=repr(found), in_doubt=in_doubt, claim_age_s=round(age, 3))
        if found is not None:
            return await self.accept(found, claim, adopted=True)
        # The vendor shows nothing started: take the claim over (compare-and-set) and call.
        try:
            await ctx.store.claims.release(claim)
        except Conflict:
            raise RetryLater(0.5, "claim changed while reconciling") from None
        fresh = await ctx.store.claims.claim(self.key, self.owner)
        if not fresh.won:
            raise RetryLater(0.5, "claim taken while reconciling")
        return await self.invoke(fresh)


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
    if run is not None and run.get("state") in TERMINAL_RUN_STATES:
        ctx.log.info("stage.skipped", reason=f"run is {run['state']}")
        return []
    stage_entry = (run or {}).get("stages", {}).get(req.stage, {})
    if stage_entry.get("state") == "succeeded":
        return [stage_succeeded(event, stage_entry.get("job_id"))]
    expected_s = await expected_seconds(ctx, req.kind, req.stage)
    attempt = _Attempt(call, event, ctx, target, rid, expected_s)

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
            state="running" if g.ok else "planned",
            upgrade_calls=0,
            status_calls=0,
        )
    if not g.ok:
        if g.retry_at is None:
            return await attempt.fail("window", g.reason)
        await note(ctx, rid, req.stage, state="waiting", waiting_until=iso(g.retry_at), reason=g.reason)
        again = consequence(event, T.STAGE_REQUESTED, req, req.stage, req.attempt, "window", iso(g.retry_at))
        return [Delayed(again, ctx.clock.real_delay((g.retry_at - now).total_seconds()))]
    if run is not None and run.get("state") != "running":
        await ledger.update_run(rid, state="running")

    if not call.claimed:
        return await attempt.invoke(None)
    claim = await ctx.store.claims.claim(attempt.key, attempt.owner)
    if claim.won:
        return await attempt.invoke(claim)
    if claim.state == "recorded":
        return attempt.replay(claim, stage_entry)
    return await attempt.reconcile(claim, bool(stage_entry.get("in_doubt")))
