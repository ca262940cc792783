"""How often a vendor job is looked at, when it counts as stuck, and what its duration was.

The goal (issue 13): a job's end is noticed within max(5 s, 10 % of the job) — for every job
length, with few status calls. What a (kind, stage) takes is known from the ledger's history
(the last :data:`shared.store.ledger.HISTORY` durations; the fleet's ``durations`` or the kind's
default when there is none), summed up as an :class:`Expected`:

* ``typical_s`` — the median: the window gate's estimate, and the stuck limit's unit;
* ``first_s`` — the first look, early enough that few jobs have ended by then: the history's
  :data:`LOW_Q` quantile (with HISTORY = 200: its 10th shortest); with fewer than :data:`MIN_HISTORY`
  samples, not after :data:`BLIND` × the lower of the typical and the fleet's (or default)
  duration either — one sample says nothing of the spread, and may itself be a long job (a
  wave's first hundred jobs start together on the canary's one sample);
  never before :data:`FIRST_MIN` × the typical (an outlier must not cost dozens of looks).

After the first look, the next comes :data:`STEP` × the elapsed time later, at least
:data:`FLOOR` domain seconds (:func:`poll_delay`): a geometric schedule. A job that ends between
two looks is noticed at the second, less than max(FLOOR, STEP × its length) after its end, so
the bound holds for any length once past the first look; STEP = 8 % leaves 2 % of the job for
the pipeline's own latency. Looks per job: ~1 + ln(length / first) / ln(1 + STEP) — about 7 for
a median job when the history's spread is a lognormal σ of 0.3. A job without progress for
:data:`STUCK_AFTER` × the typical (never less than × the configured duration:
:attr:`Expected.stuck_s`) is stuck; until then it has had at most :data:`LOOKS_TO_STUCK` looks
when the history agrees with the configuration (the FLOOR steps up to FLOOR / STEP, then the
geometric ones from FIRST_MIN × typical), a few more per doubling when the configuration says longer.

:func:`observed_seconds` is what goes into the history when a look finds the job done: the
middle of the last interval between looks (the poll carries when the previous look asked: a
look that came late widens the interval, it does not move it), not the look's own elapsed time (which is late by
up to a step, and would creep the history upward); a job done at its first look ended some time
before it — it is counted a step before that look *as scheduled* (a late delivery of the look
must not count), so jobs shorter than the first look pull the next first looks earlier instead
of keeping them where they were (or, with the pipeline's latency added, pushing them later).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from shared.domain.stages import expected_duration
from shared.runtime.function import Context

__all__ = [
    "BLIND",
    "FIRST_MIN",
    "FLOOR",
    "LOOKS_TO_STUCK",
    "LOW_Q",
    "MIN_HISTORY",
    "STEP",
    "STUCK_AFTER",
    "Expected",
    "expected",
    "expected_from",
    "expected_seconds",
    "observed_seconds",
    "poll_delay",
    "quantile",
]

#: Between two looks: STEP of the elapsed time, at least FLOOR domain seconds.
STEP, FLOOR = 0.08, 5.0
#: The first look: the history's LOW_Q quantile; with fewer than MIN_HISTORY samples at most
#: BLIND × the lower of the typical and the default; never before FIRST_MIN × the typical.
LOW_Q, MIN_HISTORY, BLIND, FIRST_MIN = 0.05, 10, 0.5, 0.25
#: A job whose progress has not changed for this many typical durations is stuck.
STUCK_AFTER = 3.0
#: Looks a job can have before it is stuck (see the module docstring): the FLOOR steps, the
#: geometric ones from FIRST_MIN × typical to STUCK_AFTER × typical, the first and the last.
LOOKS_TO_STUCK = 2 + math.ceil(1 / STEP) + math.ceil(math.log(STUCK_AFTER / FIRST_MIN) / math.log(1 + STEP))


@dataclass(frozen=True, slots=True)
class Expected:
    """What a (kind, stage) is expected to take, in domain seconds (see the module docstring)."""

    typical_s: float
    first_s: float
    #: the fleet's setting or the kind's default: the stuck limit never goes below it
    default_s: float = 0.0

    @property
    def stuck_s(self) -> float:
        """A job whose progress has not moved for this long is stuck: :data:`STUCK_AFTER` × the
        typical, or × the configured duration when the history says less. The history can sink
        far below the jobs' real length — a job found done at a late first look counts a step
        before it, so looks that are always late pull it down (on NATS at speed 300, 75 domain
        seconds late: a 2-minute pre-check's typical fell to 25 s) — and failing a healthy job
        that reports no percentage halts its window, where a late "stuck" only costs looks."""
        return STUCK_AFTER * max(self.typical_s, self.default_s)


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank ``q``-quantile (0..1) of non-empty ``values`` (the smallest for q ≤ 1/len)."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def expected_from(history: Sequence[float], default_s: float) -> Expected:
    """The expectation from past durations (``history``, seconds) and ``default_s`` (the fleet's
    setting or the kind's default), which only counts while the history is short."""
    typical = statistics.median(history) if history else default_s
    first = quantile(history, LOW_Q) if history else typical
    if len(history) < MIN_HISTORY:
        first = min(first, BLIND * min(typical, default_s))
    return Expected(typical, max(FLOOR, FIRST_MIN * typical, first), default_s)


async def expected(ctx: Context, kind: str, stage: str) -> Expected:
    """The expectation of a (kind, stage) from the ledger's history (else the fleet's, the default)."""
    history = await ctx.store.ledger.durations(kind, stage)
    default = expected_duration(kind, stage, fleet=ctx.fleet).total_seconds()
    return expected_from(history, default)


async def expected_seconds(ctx: Context, kind: str, stage: str) -> float:
    """Domain seconds a (kind, stage) typically takes (the median of the ledger's history)."""
    return (await expected(ctx, kind, stage)).typical_s


def poll_delay(exp: Expected, elapsed_s: float) -> float:
    """Domain seconds until the next status look, ``elapsed_s`` after the job started."""
    if elapsed_s < exp.first_s:
        return max(FLOOR, exp.first_s - elapsed_s)
    return max(FLOOR, STEP * elapsed_s)


def observed_seconds(elapsed_s: float, looks: int, exp: Expected, previous_s: float | None = None) -> float:
    """The duration to remember for a job found done at its ``looks``-th look, ``elapsed_s`` in
    (``exp``: the (kind, stage)'s expectation now; ``previous_s``: when the look before asked,
    as the poll recorded it)."""
    if looks <= 1:
        # done before the first look, which may have come late (a busy pipeline): a step before
        # the look as scheduled, so the shortest of the history — the next first looks — moves
        # earlier until few jobs are done at their first look, whatever the pipeline's latency
        return min(elapsed_s, exp.first_s) * (1 - STEP)
    if previous_s is None or not 0 <= previous_s <= elapsed_s:
        # (a poll from before looks were recorded) the previous look one step earlier:
        # elapsed_s = prev + max(FLOOR, STEP × prev) — a late look makes this late too
        previous_s = max(0.0, min(elapsed_s - FLOOR, elapsed_s / (1 + STEP)))
    return (previous_s + elapsed_s) / 2
