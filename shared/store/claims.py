"""Claims: exactly-once vendor calls on an at-least-once bus (DESIGN §6.2, §6.7).

Before a function calls an upgrade API it *claims* (target, stage, version). The first claimer
wins and makes the call. The claim then remembers what happened, so a redelivered event emits
exactly the consequences the first delivery emitted, and never calls again:

* ``claimed`` — the call may be in flight, or its answer was lost (``in_doubt_at``), or the
  vendor answered "already in progress" (``conflict``): reconcile by asking the vendor, after
  it has had time to settle, and only call again when two looks (``looks``) found nothing;
* ``recorded(job)`` — the vendor accepted it: carry on with the recorded job id;
* ``refused(code, message)`` — the vendor said no (or reconciling hit a permanent error): the
  stage fails with that code, again, on every redelivery;
* released (the entry is gone) — only when the call certainly never reached the vendor.

Every transition is a compare-and-set on the revision the caller read, and carries the
claim's creation facts forward: ages are always measured from ``claimed_at`` of the claim
itself, never from a later entry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.errors import Conflict
from shared.store.base import KV

__all__ = ["BUCKET", "Claim", "Claims", "claim_key"]

BUCKET = "claims"
State = Literal["claimed", "recorded", "refused"]
#: Fields set when the claim is created; every later transition keeps them.
_CREATION = ("owner", "claimed_at", "domain_at", "vendor_at")


def claim_key(target: str, stage: str, version: str) -> str:
    return f"{target}/{stage}/{version}"


@dataclass(frozen=True, slots=True)
class Claim:
    key: str
    #: True for the caller that created the claim now; False when it already existed.
    won: bool
    state: State
    owner: str
    revision: int
    #: When the claim was created: our wall clock (leases, settle times) …
    claimed_at: float = 0.0
    #: … our domain clock, and the vendor's clock as learnt from its ``Date`` (None: unknown).
    domain_at: float = 0.0
    vendor_at: float | None = None
    job_id: str | None = None
    result: dict[str, Any] | None = None
    #: ``{code, message, request_id}`` of a refused claim.
    refusal: dict[str, Any] | None = None
    #: Wall time at which an attempt learnt that its answer was lost.
    in_doubt_at: float | None = None
    #: ``{code, message, request_id, transient}`` of an "already in progress" answer.
    conflict: dict[str, Any] | None = None
    #: Wall times of reconcile looks that found nothing at the vendor.
    looks: tuple[float, ...] = field(default=())

    @classmethod
    def _from(cls, key: str, won: bool, value: dict[str, Any], revision: int) -> Claim:
        return cls(
            key=key,
            won=won,
            state=value["state"],
            owner=value["owner"],
            revision=revision,
            claimed_at=float(value.get("claimed_at", 0.0)),
            domain_at=float(value.get("domain_at", value.get("claimed_at", 0.0))),
            vendor_at=value.get("vendor_at"),
            job_id=value.get("job_id"),
            result=value.get("result"),
            refusal=value.get("refusal"),
            in_doubt_at=value.get("in_doubt_at"),
            conflict=value.get("conflict"),
            looks=tuple(value.get("looks", ())),
        )

    def _value(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "owner": self.owner,
            "claimed_at": self.claimed_at,
            "domain_at": self.domain_at,
            "vendor_at": self.vendor_at,
            "job_id": self.job_id,
            "result": self.result,
            "refusal": self.refusal,
            "in_doubt_at": self.in_doubt_at,
            "conflict": self.conflict,
            "looks": list(self.looks),
        }


class Claims:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

    async def claim(
        self, key: str, owner: str, *, domain_at: float | None = None, vendor_at: float | None = None
    ) -> Claim:
        """Create the claim, or report the existing one. Of concurrent claimers exactly one wins."""
        now = time.time()
        fresh = Claim(key, True, "claimed", owner, 0, now, now if domain_at is None else domain_at, vendor_at)
        try:
            rev = await self.kv.create(BUCKET, key, fresh._value())
            return Claim._from(key, True, fresh._value(), rev)
        except Conflict:
            existing = await self.kv.get(BUCKET, key)
            if existing is None:  # released between our create and get: try once more
                return await self.claim(key, owner, domain_at=domain_at, vendor_at=vendor_at)
            return Claim._from(key, False, existing.value, existing.revision)

    async def _move(self, claim: Claim, **changes: Any) -> Claim:
        value = {**claim._value(), **changes}
        rev = await self.kv.update(BUCKET, claim.key, value, claim.revision)
        return Claim._from(claim.key, claim.won, value, rev)

    async def record(self, claim: Claim, job_id: str, result: dict[str, Any] | None = None) -> Claim:
        """The vendor accepted: attach its job id. Conflict if the claim changed meanwhile."""
        return await self._move(
            claim, state="recorded", job_id=job_id, result=result or {}, recorded_at=time.time()
        )

    async def refuse(self, claim: Claim, code: str, message: str, request_id: str | None = None) -> Claim:
        """The vendor said no (for good): every redelivery fails the stage with this code."""
        refusal = {"code": code, "message": message, "request_id": request_id}
        return await self._move(claim, state="refused", refusal=refusal)

    async def in_doubt(self, claim: Claim, *, conflict: dict[str, Any] | None = None) -> Claim:
        """The call's answer was lost (or was "already in progress"): reconcile, do not repeat."""
        changes: dict[str, Any] = {"in_doubt_at": time.time(), "looks": []}
        if conflict is not None:
            changes["conflict"] = conflict
        return await self._move(claim, **changes)

    async def looked(self, claim: Claim) -> Claim:
        """One reconcile look found nothing at the vendor."""
        return await self._move(claim, looks=[*claim.looks, time.time()])

    async def release(self, claim: Claim) -> None:
        """Drop a claim whose call certainly did not reach the vendor (or certainly did nothing),
        so a retry may call. Conflict if the claim changed meanwhile."""
        await self.kv.delete(BUCKET, claim.key, revision=claim.revision)

    async def get(self, key: str) -> Claim | None:
        e = await self.kv.get(BUCKET, key)
        return None if e is None else Claim._from(key, False, e.value, e.revision)
