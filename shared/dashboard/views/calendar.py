"""The calendar: :func:`calendar_view` (windows and freezes, in the window's zone, UTC and the viewer's)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.dashboard.views.models import (
    DEFAULT_DAYS,
    CalendarFreeze,
    CalendarOccurrence,
    CalendarView,
    CalendarWindow,
    Instant,
)
from shared.dashboard.views.reading import (
    covers_target,
    freezes_between,
)
from shared.domain.fleet import Fleet, Target
from shared.domain.freezes import ActiveFreeze
from shared.domain.scopes import covers
from shared.domain.windows import occurrences, timezone_problem
from shared.engine.control import control_state
from shared.store import Store

__all__ = ["calendar_view"]

# --- calendar ---------------------------------------------------------------------------------


def _instant(dt: datetime, local: str, viewer: ZoneInfo | None) -> Instant:
    return Instant(
        utc=dt.astimezone(UTC),
        local=dt.astimezone(ZoneInfo(local)),
        viewer=None if viewer is None else dt.astimezone(viewer),
    )


def _freeze_zone(fleet: Fleet, f: ActiveFreeze) -> str:
    rule = next((r for r in fleet.freezes if r.name == f.name and f.source == "fleet"), None)
    return "UTC" if rule is None else rule.timezone


async def calendar_view(
    store: Store, fleet: Fleet, now: datetime, days: int = DEFAULT_DAYS, tz: str | None = None
) -> CalendarView:
    """The windows' occurrences open in ``[now, now + days)`` and the freezes overlapping that
    span (ValueError for a ``tz`` that is no IANA time zone; :func:`calendar_query` checks it)."""
    if tz is not None and timezone_problem(tz) is not None:
        raise ValueError(timezone_problem(tz))
    viewer = None if tz is None else ZoneInfo(tz)
    start, end = now.astimezone(UTC), now.astimezone(UTC) + timedelta(days=days)
    control = await control_state(store.kv)
    freezes = freezes_between(fleet, control, start, end)
    by_window: dict[str, list[Target]] = {name: [] for name in fleet.windows}
    for t in fleet.targets:
        if t.window is not None:
            by_window[t.window].append(t)

    def covering(targets: Sequence[Target], name: str) -> list[ActiveFreeze]:
        return [
            f
            for f in freezes
            if any(covers_target(f, t) for t in targets)
            or covers(f.scope, target="", kind="", window=name, wave=-1)
        ]

    windows = []
    for name, window in fleet.windows.items():
        mine = covering(by_window[name], name)
        occs = []
        # the occurrence open now counts too: it is what the page's "now" is in
        for occ in occurrences(window, start - window.duration, end):
            if occ.closes_at <= start:
                continue
            names = [f.name for f in mine if f.starts_at < occ.closes_at and occ.opens_at < f.ends_at]
            occs.append(
                CalendarOccurrence(
                    opens=_instant(occ.opens_at, window.timezone, viewer),
                    closes=_instant(occ.closes_at, window.timezone, viewer),
                    cutoff=_instant(occ.cutoff_at, window.timezone, viewer),
                    freezes=sorted(set(names)),
                )
            )
        windows.append(
            CalendarWindow(
                name=name,
                timezone=window.timezone,
                schedule=window.rrule or window.cron or "",
                duration_s=window.duration.total_seconds(),
                cutoff_s=window.cutoff.total_seconds(),
                concurrency=window.concurrency,
                targets=[t.name for t in by_window[name]],
                occurrences=occs,
            )
        )
    rows = []
    for f in freezes:
        zone = _freeze_zone(fleet, f)
        targets = [t.name for t in fleet.targets if covers_target(f, t)]
        rows.append(
            CalendarFreeze(
                name=f.name,
                scope=f.scope_text,
                starts=_instant(f.starts_at, zone, viewer),
                ends=_instant(f.ends_at, zone, viewer),
                reason=f.reason,
                source=f.source,
                by=f.by,
                windows=[n for n in fleet.windows if f in covering(by_window[n], n)],
                targets=targets,
            )
        )
    return CalendarView(
        start=start,
        end=end,
        days=days,
        tz=tz,
        windows=windows,
        anytime=[t.name for t in fleet.targets if t.window is None],
        freezes=rows,
    )
