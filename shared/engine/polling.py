"""How often a vendor job is looked at, and when it counts as stuck.

The first status look comes at ``FIRST_LOOK`` of the stage's expected duration, then one every
``STEP`` of it (or of the elapsed time once past it), never more often than ``FLOOR`` domain
seconds: with a fair estimate a job takes ~3 looks, and completion is noticed within ~10% of its
duration. The expected duration is the ledger's history of the (kind, stage) when it has one,
else the fleet's ``durations``, else the kind's default (:func:`shared.domain.stages.expected_duration`).
"""

from __future__ import annotations

from shared.domain.stages import expected_duration
from shared.runtime.function import Context

__all__ = ["FIRST_LOOK", "FLOOR", "STEP", "STUCK_AFTER", "expected_seconds", "poll_delay"]

#: First look at this share of the expected duration, then every STEP of it, at least FLOOR apart.
FIRST_LOOK, STEP, FLOOR = 0.9, 0.1, 5.0
#: A job whose progress has not changed for this many expected durations is stuck.
STUCK_AFTER = 3.0


async def expected_seconds(ctx: Context, kind: str, stage: str) -> float:
    """Domain seconds a (kind, stage) is expected to take, from the ledger's history."""
    history = await ctx.store.ledger.durations(kind, stage)
    return expected_duration(kind, stage, history=history, fleet=ctx.fleet).total_seconds()


def poll_delay(expected_s: float, elapsed_s: float) -> float:
    """Domain seconds until the next status look, ``elapsed_s`` after the job started."""
    first = FIRST_LOOK * expected_s
    if elapsed_s < first:
        return max(FLOOR, first - elapsed_s)
    return max(FLOOR, STEP * max(expected_s, elapsed_s))
