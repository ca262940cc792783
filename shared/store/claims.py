"""Claims: exactly-once vendor calls on an at-least-once bus (DESIGN §6.2).

Before a function calls an upgrade API it *claims* (target, stage, version). The first claimer
wins; after the call it *records* the vendor's job id on the claim. A redelivered event that
finds the claim:

* recorded → the call was made; carry on with the recorded job id (no second call);
* claimed but not recorded → the first attempt died somewhere around the call: reconcile by
  asking the vendor (list tasks, read the version) instead of calling again;
* released → the call definitely did not happen (refused before or by the vendor): claim again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from shared.errors import Conflict
from shared.store.base import KV

__all__ = ["BUCKET", "Claim", "Claims", "claim_key"]

BUCKET = "claims"
State = Literal["claimed", "recorded"]


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
    job_id: str | None = None
    result: dict[str, Any] | None = None


class Claims:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

    async def claim(self, key: str, owner: str) -> Claim:
        """Create the claim, or report the existing one. Of concurrent claimers exactly one wins."""
        value = {"state": "claimed", "owner": owner, "claimed_at": time.time()}
        try:
            rev = await self.kv.create(BUCKET, key, value)
            return Claim(key, True, "claimed", owner, rev)
        except Conflict:
            existing = await self.kv.get(BUCKET, key)
            if existing is None:  # released between our create and get: try once more
                return await self.claim(key, owner)
            v = existing.value
            return Claim(key, False, v["state"], v["owner"], existing.revision, v.get("job_id"), v.get("result"))

    async def record(self, claim: Claim, job_id: str, result: dict[str, Any] | None = None) -> Claim:
        """Attach the vendor's job id; Conflict if someone else changed the claim meanwhile."""
        value = {"state": "recorded", "owner": claim.owner, "job_id": job_id, "result": result or {}, "recorded_at": time.time()}
        rev = await self.kv.update(BUCKET, claim.key, value, claim.revision)
        return Claim(claim.key, claim.won, "recorded", claim.owner, rev, job_id, result or {})

    async def release(self, claim: Claim) -> None:
        """Drop a claim whose call certainly did not reach the vendor, so a retry may call."""
        await self.kv.delete(BUCKET, claim.key, revision=claim.revision)

    async def get(self, key: str) -> Claim | None:
        e = await self.kv.get(BUCKET, key)
        if e is None:
            return None
        v = e.value
        return Claim(key, False, v["state"], v["owner"], e.revision, v.get("job_id"), v.get("result"))
