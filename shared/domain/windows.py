"""Maintenance windows: when a window is open, when it opens next, and whether a stage fits.

A :class:`~shared.domain.fleet.Window` opens on an RRULE (``dateutil.rrule``) or a cron expression
(``croniter``), read as *wall-clock* times in the window's IANA timezone, and stays open for
``duration`` of elapsed time. No stage may start in its last ``cutoff``.

DST, decided once here:

* occurrences are computed on the local wall clock, then placed on the timeline with
  ``fold=0``: a start that falls in the spring-forward gap (02:30 on the night clocks jump
  from 02:00 to 03:00) happens at the same *UTC offset as before the jump* — 03:30 local;
  a start in the repeated fall-back hour happens once, at its first occurrence;
* ``duration`` and ``cutoff`` are elapsed time: a 4h window is 4 real hours long even on a
  night that is 23 or 25 hours long.

Every returned instant is timezone-aware UTC.

Cached, because the gate runs on every ``stage.requested`` and iterating a weekly RRULE from its
anchor costs milliseconds: per window object, the last *span* asked about — an interval of
instants over which :func:`window_at` and :func:`next_open` have the same answers (the occurrence
that contains them up to the next one's opening, or the closed gap up to the next opening).
Answers are the uncached ones (``_window_at``/``_next_open``); only how often they are computed
changes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from dateutil.rrule import DAILY, HOURLY, MINUTELY, SECONDLY, YEARLY, rrule, rruleset, rrulestr

from shared.domain.durations import format_duration
from shared.errors import ConfigError

if TYPE_CHECKING:  # the fleet's models import nothing from here; at run time only values pass
    from shared.domain.fleet import Fleet, Target, Window

__all__ = [
    "BadWindow",
    "Gate",
    "OpenWindow",
    "gate",
    "next_open",
    "occurrences",
    "schedule_problem",
    "timezone_problem",
    "window_at",
]

#: A Monday, 1 January, local midnight: what an RRULE without DTSTART takes its defaults from
#: (hour/minute/second 0, weekday Monday, day 1, January), fixed so INTERVAL>1 keeps its phase.
_ANCHOR = datetime(2018, 1, 1)
#: How far ahead ``next_open`` looks before deciding a window never opens again.
_HORIZON = timedelta(days=800)
#: RRULE parts whose meaning depends on FREQ: ordinals within the period (BYSETPOS, BYDAY=1SA), weeks.
_ORDINAL_PARTS = re.compile(r"BYSETPOS=|BYWEEKNO=|BYEASTER=|BYDAY=[^;]*\d")


class BadWindow(ConfigError):
    """A window's rrule or cron does not parse."""


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """One occurrence of a window (UTC instants)."""

    opens_at: datetime
    closes_at: datetime
    cutoff_at: datetime

    @property
    def key(self) -> str:
        """Stable identity of the occurrence, for deterministic event ids."""
        return self.opens_at.strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True, slots=True)
class Gate:
    """Whether a stage may start now; when not, why and when to look again (None: never fits)."""

    ok: bool
    reason: str
    retry_at: datetime | None = None
    window: OpenWindow | None = None


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware instant")
    return dt.astimezone(UTC)


@functools.lru_cache(maxsize=256)
def _rule(text: str) -> tuple[rrule | rruleset, bool]:
    """The parsed rule (pure, so cached per process) and whether its phase depends on the anchor."""
    try:
        if "DTSTART" in text.upper():
            return rrulestr(text, ignoretz=True), True
        rule = rrulestr(text, dtstart=_ANCHOR)
    except (ValueError, TypeError) as exc:
        raise BadWindow("rrule", f"{text!r} is not an RRULE: {exc}") from None
    # Daily-or-finer rules with INTERVAL=1 and no COUNT look the same from any midnight, so they
    # may start near the instant asked about instead of iterating from the anchor.
    # (rrulestr without DTSTART/forceset gives a single rrule; its fields are not public API)
    movable = isinstance(rule, rrule) and (
        rule._freq in (DAILY, HOURLY, MINUTELY, SECONDLY)  # type: ignore[attr-defined]
        and rule._interval == 1  # type: ignore[attr-defined]
        and rule._count is None  # type: ignore[attr-defined]
    )
    return rule, not movable


def schedule_problem(rrule_text: str | None, cron: str | None) -> str | None:
    """What is wrong with a window's schedule (does not parse, never occurs), or None.

    The fleet's ``Window`` calls this when the fleet loads, so a window that could never open is
    refused naming the file, the line and the window, instead of dead-lettering every clock tick.
    """
    if cron is not None:
        if not croniter.is_valid(cron):
            return f"{cron!r} is not a cron expression (minute hour day-of-month month day-of-week)"
        try:
            croniter(cron, _ANCHOR).get_next(datetime)
        except CroniterBadDateError:
            return f"cron {cron!r} never occurs"
        return None
    if rrule_text is None:
        return None
    try:
        rule, _ = _rule(rrule_text)
    except BadWindow as exc:
        return exc.message
    if isinstance(rule, rrule):
        start = rule._dtstart  # type: ignore[attr-defined]
        until = rule._until  # type: ignore[attr-defined]
        if rule._count == 0:  # type: ignore[attr-defined]
            return f"rrule {rrule_text!r} never occurs (COUNT=0)"
        probe = rule.replace(count=None)  # the first occurrence is the same without COUNT
        upper = rrule_text.upper()
        if (
            rule._freq != YEARLY  # type: ignore[attr-defined]
            and rule._interval == 1  # type: ignore[attr-defined]
            and not _ORDINAL_PARTS.search(upper)
            and any(f"BY{part}=" in upper for part in ("DAY", "MONTHDAY", "YEARDAY"))
        ):
            # dateutil looks at every day up to the year 9999 for a rule that can never match
            # (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30: seconds); with INTERVAL=1, an explicit day
            # filter and no ordinals (BYSETPOS, BYWEEKNO, BYDAY=1SA mean something else in a
            # year), the days such a rule matches are the yearly rule's
            probe = probe.replace(freq=YEARLY)
        first = probe.after(start, inc=True)
        if first is not None and until is not None and first > until:
            first = None
    else:  # an rruleset (several lines: RDATE, EXRULE …)
        first = rule.after(_ANCHOR, inc=True)
    if first is None:
        return f"rrule {rrule_text!r} never occurs"
    return None


def timezone_problem(name: str) -> str | None:
    """What is wrong with an IANA timezone name (unknown, malformed), or None."""
    try:
        ZoneInfo(name)
    # (OSError: zoneinfo looks the key up as a file — a name too long for one raises it)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown IANA timezone {name[:80]!r}"
    return None


def _check_cron(expr: str) -> None:
    if not croniter.is_valid(expr):
        raise BadWindow("cron", f"{expr!r} is not a cron expression")


def _local_starts(window: Window, start_local: datetime) -> Iterator[datetime]:
    """Naive local wall-clock starts at or after ``start_local`` (naive), in order."""
    if window.cron is not None:
        _check_cron(window.cron)
        it = croniter(window.cron, start_local - timedelta(seconds=1))
        while True:
            yield it.get_next(datetime)
    else:
        rule, fixed = _rule(window.rrule)
        if not fixed and isinstance(rule, rrule):  # (only a single rrule is ever movable)
            midnight = start_local.replace(hour=0, minute=0, second=0, microsecond=0)
            rule = rule.replace(dtstart=midnight)
        yield from rule.xafter(start_local, inc=True)


def _place(window: Window, local: datetime) -> OpenWindow:
    opens = local.replace(tzinfo=ZoneInfo(window.timezone), fold=0).astimezone(UTC)
    closes = opens + window.duration
    return OpenWindow(opens, closes, closes - window.cutoff)


def occurrences(window: Window, start: datetime, end: datetime) -> list[OpenWindow]:
    """Occurrences whose opening instant lies in ``[start, end)``, in order of opening."""
    start, end = _utc(start), _utc(end)
    tz = ZoneInfo(window.timezone)
    # A day of slack each side: local wall time and UTC differ by at most ~26h, and gap starts
    # move forward by up to the size of the jump.
    lo = (start.astimezone(tz) - timedelta(days=1)).replace(tzinfo=None)
    hi = (end.astimezone(tz) + timedelta(days=1)).replace(tzinfo=None)
    out: list[OpenWindow] = []
    for local in _local_starts(window, lo):
        if local >= hi:
            break
        occ = _place(window, local)
        if start <= occ.opens_at < end:
            out.append(occ)
    return sorted(set(out), key=lambda o: o.opens_at)


def _window_at(window: Window, now: datetime) -> OpenWindow | None:
    now = _utc(now)
    candidates = occurrences(window, now - window.duration, now + timedelta(microseconds=1))
    for occ in reversed(candidates):
        if occ.opens_at <= now < occ.closes_at:
            return occ
    return None


def _next_open(window: Window, after: datetime) -> OpenWindow | None:
    after = _utc(after)
    step = timedelta(days=8)
    lo = after + timedelta(microseconds=1)
    while lo - after < _HORIZON:
        found = occurrences(window, lo, lo + step)
        if found:
            return found[0]
        lo += step
        step = min(step * 2, timedelta(days=120))
    return None


@dataclass(frozen=True, slots=True)
class _Span:
    """Instants ``[lo, hi)`` of one window over which ``window_at`` is ``occ`` and, when ``nxt``
    is not None, ``next_open`` is ``nxt``.

    Why that holds: occurrences all last ``duration``, so ``window_at(t)`` is the latest opening
    at or before ``t`` if it still runs at ``t``. With ``occ`` open and ``nxt`` the first opening
    after ``occ.opens_at``, every ``t`` in ``[occ.opens_at, min(occ.closes_at, nxt.opens_at))``
    has ``occ`` as its latest opening and ``nxt`` as its next. With nothing open at ``t0`` and
    ``nxt`` the first opening after ``t0``, nothing opens in ``(t0, nxt.opens_at)`` and nothing
    opened before ``t0`` still runs after it. (``nxt`` None: "none within the horizon" of that
    instant only, so ``next_open`` of another instant is computed again.)"""

    lo: datetime
    hi: datetime
    occ: OpenWindow | None
    nxt: OpenWindow | None


#: id(window) -> (window, its last span). Keyed by identity (a fleet's windows live as long as the
#: fleet; the entry holds the window, so its id cannot be reused meanwhile); bounded for reloads.
_SPANS: dict[int, tuple[Window, _Span]] = {}
_MAX_SPANS = 512


def _span(window: Window, now: datetime) -> _Span:
    """The span of ``window`` containing ``now`` (UTC), from the cache or computed and cached."""
    held = _SPANS.get(id(window))
    if held is not None and held[0] is window and held[1].lo <= now < held[1].hi:
        return held[1]
    occ = _window_at(window, now)
    nxt = _next_open(window, occ.opens_at if occ is not None else now)
    if occ is not None:
        span = _Span(
            occ.opens_at, occ.closes_at if nxt is None else min(occ.closes_at, nxt.opens_at), occ, nxt
        )
    else:
        span = _Span(now, nxt.opens_at if nxt is not None else now + timedelta(microseconds=1), None, nxt)
    if len(_SPANS) >= _MAX_SPANS:
        _SPANS.clear()
    _SPANS[id(window)] = (window, span)
    return span


def window_at(window: Window, now: datetime) -> OpenWindow | None:
    """The occurrence that contains ``now`` (opens_at <= now < closes_at), latest first; else None."""
    return _span(window, _utc(now)).occ


def next_open(window: Window, after: datetime) -> OpenWindow | None:
    """The first occurrence opening strictly after ``after``; None if none within ~2 years."""
    after = _utc(after)
    nxt = _span(window, after).nxt
    return nxt if nxt is not None else _next_open(window, after)


def gate(fleet: Fleet, target: Target | str, now: datetime, expected: timedelta) -> Gate:
    """May a stage expected to take ``expected`` start on ``target`` at ``now``?

    Yes only if the target's window is open at ``now``, ``now`` is before its cutoff and
    ``now + expected <= cutoff_at``. Otherwise ``retry_at`` is the next occurrence's opening;
    ``retry_at`` is None when the stage can never fit (longer than the whole window before its
    cutoff, or the window never opens again). A target without a window is always open.
    """
    if isinstance(target, str):
        target = fleet.target(target)
    if target.window is None:
        return Gate(True, "no window: always open")
    name = target.window
    window = fleet.windows[name]
    now = _utc(now)
    usable = window.duration - window.cutoff
    if expected > usable:
        return Gate(
            False,
            f"stage takes {format_duration(expected)}, longer than window {name!r} allows ({format_duration(usable)})",
        )
    occ = window_at(window, now)  # both answered from the cached span of now
    if occ is not None and now < occ.cutoff_at and now + expected <= occ.cutoff_at:
        return Gate(True, f"window {name!r} open until cutoff {occ.cutoff_at.isoformat()}", window=occ)
    nxt = next_open(window, occ.opens_at if occ is not None else now)
    retry = None if nxt is None else nxt.opens_at
    if occ is None:
        reason = f"window {name!r} is closed"
    elif now >= occ.cutoff_at:
        reason = f"window {name!r} is past its cutoff {occ.cutoff_at.isoformat()}"
    else:
        reason = f"stage takes {format_duration(expected)}, only {format_duration(occ.cutoff_at - now)} left before the cutoff of {name!r}"
    return Gate(False, reason, retry, occ)
