"""One delivery of a stage: claim → ONE vendor call → record → ledger → events, and the
reconcile of a claim an earlier delivery left unrecorded — the state machine behind
:func:`shared.engine.stage.run_stage`, whose docstring states the contract it keeps.

Every store write here (claim, record, refusal, in-doubt mark, ledger note) comes before the
outbox commits and makes a redelivery emit the same events with the same ids; each is followed
by its crash point (``shared/crashpoints.py``) so a test can kill the process right after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from events.catalog import StageRequested
from events.envelope import Event
from shared import crashpoints
from shared.bus.base import Emitted
from shared.clouds.client import BaseClient
from shared.clouds.errors import CloudError, TransientCloudError
from shared.domain.fleet import Target
from shared.domain.stages import UPGRADE_STAGES
from shared.engine.consequences import stage_failed, stage_started, stage_succeeded
from shared.engine.contract import Done, Job, Refused, VendorCall
from shared.engine.polling import Expected
from shared.engine.vendor_clock import Since, iso, vendor_now
from shared.errors import ConfigError, Conflict, RetryLater
from shared.runtime.function import Context
from shared.store.base import Value
from shared.store.claims import Claim, claim_key

__all__ = ["Attempt"]

C = TypeVar("C", bound=BaseClient)


@dataclass
class Attempt(Generic[C]):
    """One delivery of a stage's ``stage.requested``: the call, the target, the run, and — once
    the window lets the stage run — the client (``run_stage`` builds it)."""

    call: VendorCall[C]
    event: Event[StageRequested]
    ctx: Context
    target: Target
    rid: str
    expected: Expected
    vendor: C | None = None

    @property
    def client(self) -> C:
        if self.vendor is None:  # run_stage builds it before anything calls or reconciles
            raise RuntimeError("the stage's client is not built yet")
        return self.vendor

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
        await self.ctx.store.ledger.note_stage(
            self.rid,
            self.req.stage,
            calls=calls,
            upgrade=self.upgrade,
            state="failed",
            ended_at=now,
            code=code,
            message=message,
            # (the dashboard shows the vendor's request id with the error; None: none was sent)
            request_id=request_id,
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
        self,
        result: Job | Done,
        claim: Claim | None,
        *,
        adopted: bool = False,
        calls: int = 0,
        sent_at: datetime | None = None,
    ) -> list[Emitted]:
        """Record the outcome on the claim, then in the ledger; the events that follow it.
        ``sent_at``: when the call that started the job was sent — the job's start as far as we
        can know (the answer, and recording it, may take a while on a busy pipeline; looks
        timed from then would notice short jobs late). Else now."""
        sync = isinstance(result, Done)
        job_id = result.job_id or ""
        if claim is not None:
            try:
                # the start as sent, for a replay that finds no ledger entry (died before it)
                record: dict[str, object] = {"sync": sync, "adopted": adopted}
                if sent_at is not None:
                    record["sent_at"] = iso(sent_at)
                await self.ctx.store.claims.record(claim, result.job_id or "", record)
            except Conflict:  # another delivery reconciled it meanwhile: its record wins, replay it
                raise RetryLater(0.2, "claim changed while recording") from None
            crashpoints.hit("stage.recorded")
        now = self.ctx.clock.now()
        if sync:
            await self.ctx.store.ledger.note_stage(
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
        await self.ctx.store.ledger.note_stage(
            self.rid,
            self.req.stage,
            calls=calls,
            upgrade=self.upgrade,
            state="running",
            job_id=result.job_id,
            started_at=iso(sent_at or now),
            # when its id became known: lists lag from the call that made it, which may be a
            # retry seconds after the first send (``started_at``)
            known_at=iso(now),
            in_doubt=False,
        )
        crashpoints.hit("stage.noted")
        return stage_started(self.event, job_id, sent_at or now, self.expected, self.ctx.clock)

    async def invoke(self, claim: Claim | None) -> list[Emitted]:
        """The one vendor call, its errors mapped per the module contract."""
        ctx, req = self.ctx, self.req
        sent_at = ctx.clock.now()
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
                    await ctx.store.ledger.note_stage(
                        self.rid, req.stage, calls=1, upgrade=self.upgrade, in_doubt=True
                    )
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
        return await self.accept(result, claim, calls=1, sent_at=sent_at)

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
        await self.ctx.store.ledger.note_stage(
            self.rid, self.req.stage, calls=1, upgrade=self.upgrade, in_doubt=True
        )
        self.ctx.log.info("stage.conflict", code=conflict["code"], request_id=exc.request_id)
        return await self.reconcile(claim, look_now=True)

    async def _release(self, claim: Claim | None) -> None:
        if claim is not None:
            await self.ctx.store.claims.release(claim)

    async def replay(self, claim: Claim, stage_entry: Value) -> list[Emitted]:
        """The claim was recorded by an earlier delivery: emit what it emitted, call nothing.
        The ledger is brought level first (the earlier delivery may have died before it)."""
        result = claim.result or {}
        if result.get("sync"):
            if stage_entry.get("state") != "succeeded":
                await self.ctx.store.ledger.note_stage(
                    self.rid, self.req.stage, state="succeeded", job_id=claim.job_id or None
                )
            return [stage_succeeded(self.event, claim.job_id or None)]
        if stage_entry.get("started_at"):
            started_at = _parse(stage_entry["started_at"])
        else:
            sent = result.get("sent_at")
            started_at = _parse(sent) if isinstance(sent, str) else self.ctx.clock.now()
            await self.ctx.store.ledger.note_stage(
                self.rid,
                self.req.stage,
                state="running",
                job_id=claim.job_id,
                started_at=iso(started_at),
                known_at=iso(self.ctx.clock.now()),
            )
        return stage_started(self.event, claim.job_id or "", started_at, self.expected, self.ctx.clock)

    async def replay_refusal(self, claim: Claim, stage_entry: Value) -> list[Emitted]:
        """The claim was refused by an earlier delivery: fail the stage again, call nothing."""
        r = claim.refusal or {}
        code, message = str(r.get("code") or "refused"), str(r.get("message") or "refused")
        if stage_entry.get("state") != "failed":
            await self.ctx.store.ledger.note_stage(
                self.rid, self.req.stage, state="failed", code=code, message=message
            )
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


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
