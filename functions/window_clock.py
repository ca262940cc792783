"""window_clock (``schedule: rate(1 minute)``): ``window.opened`` / ``window.closing`` per fleet window.

On each tick (its ``at`` is the period's start in domain time), for every window:

* ``window.opened`` while an occurrence is open and before its cutoff (so a runtime that was
  down when the window opened still announces it once it is back);
* ``window.closing`` once the cutoff has passed, until ``GRACE`` after the window closed
  (so a window whose cutoff is zero still gets one).

Ids come from (window, occurrence): every tick inside one occurrence emits the same ids and
the bus keeps only the first. Occurrences and DST are :mod:`shared.domain.windows`'s business.

It also sweeps: while a window is open (before its cutoff) and its waves document holds runs,
one ``wave.ready`` per window and :data:`~shared.domain.waves.SWEEP` (ids from (window, period):
the ticks of one period emit the same), and likewise for the targets without a window. ``start_upgrades`` then looks again at the
window's waves document and ends the runs the ledger says ended, so a wake-up that was lost (a
dead-lettered ``upgrade.succeeded``, a delayed ``wave.ready`` lost with a server, a process that
died between ledger and outbox) costs at most one period, not the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events import Event, T
from events.catalog import Tick, WaveReady, WindowClosing, WindowOpened
from events.envelope import consequence
from shared.domain.waves import ANYTIME, BUCKET, SWEEP, queued_waves
from shared.domain.windows import occurrences
from shared.runtime.function import Context, upshift_function

__all__ = ["GRACE", "sweep", "window_clock"]

#: How long after a window closed a late tick still announces its closing.
GRACE = timedelta(minutes=10)


@upshift_function
async def window_clock(
    event: Event[Tick], ctx: Context
) -> list[Event[WindowOpened] | Event[WindowClosing] | Event[WaveReady]]:
    at = event.data.at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    out: list[Event[WindowOpened] | Event[WindowClosing] | Event[WaveReady]] = []
    fleet = ctx.fleet
    if fleet is not None and fleet.has_anytime_targets and await _active(ctx, ANYTIME):
        out.append(sweep(ANYTIME, at))
    for name, window in (fleet.windows if fleet is not None else {}).items():
        for occ in occurrences(window, at - window.duration - GRACE, at + timedelta(microseconds=1)):
            if occ.opens_at <= at < occ.cutoff_at:
                opened = WindowOpened(
                    window=name, opens_at=occ.opens_at, closes_at=occ.closes_at, cutoff_at=occ.cutoff_at
                )
                out.append(
                    consequence(T.WINDOW_OPENED, opened, key=(T.WINDOW_OPENED, name, occ.key), subject=name)
                )
                if await _active(ctx, name):
                    out.append(sweep(name, at))
            elif occ.cutoff_at <= at < occ.closes_at + GRACE:
                closing = WindowClosing(window=name, cutoff_at=occ.cutoff_at, closes_at=occ.closes_at)
                out.append(
                    consequence(
                        T.WINDOW_CLOSING, closing, key=(T.WINDOW_CLOSING, name, occ.key), subject=name
                    )
                )
    return out


async def _active(ctx: Context, key: str) -> bool:
    """Whether the waves document ``key`` holds runs (planned, running or paged): else nothing
    to sweep, and an idle fleet's clock publishes nothing but its ticks."""
    entry = await ctx.store.kv.get(BUCKET, key)
    return entry is not None and bool(entry.value.get("runs") or queued_waves(entry.value))


def sweep(key: str, at: datetime) -> Event[WaveReady]:
    """The look at waves document ``key`` for the :data:`SWEEP` period holding ``at``."""
    period = int(at.timestamp() // SWEEP.total_seconds())
    start = datetime.fromtimestamp(period * SWEEP.total_seconds(), UTC)
    # wave 0: start_upgrades reads only the window of a wave.ready; it finds the due wave itself
    return consequence(
        T.WAVE_READY, WaveReady(window=key, wave=0, not_before=start), key=("sweep", key, period), subject=key
    )
