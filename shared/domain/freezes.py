"""Freezes: spans of time in which no new run starts in a scope.

Two sources, one rule: a freeze typed in chat (``freeze <scope> for <duration> <reason>``, kept in
the store until it expires or ``unfreeze``) and the fleet file's ``freezes:`` (blackout dates or
recurring spans):

```yaml
freezes:
  - {name: black-friday, scope: all, start: 2026-11-27T00:00:00Z, end: 2026-11-30T23:59:59Z,
     reason: peak traffic}
  - {name: new-year, scope: kind:cce, start: 2026-12-31, end: 2027-01-01, timezone: Asia/Seoul,
     reason: year-end}                 # dates: from the start day's midnight to the END day's end
  - {name: quarter-end, scope: kind:starrocks, rrule: "FREQ=MONTHLY;BYMONTH=3,6,9,12;BYMONTHDAY=-1",
     duration: 24h, timezone: Asia/Seoul, reason: end-of-quarter reporting}
```

A freeze blocks ``start_upgrades`` from releasing a run in scope; runs already started go on.

Contract:

* **A fleet rule** (:class:`FreezeRule`) is exactly one of a *blackout* (``start`` and ``end``,
  ``end`` after ``start``) or a *recurring* freeze (``rrule`` and ``duration`` above zero). A
  time without an offset, or a bare date, is wall-clock time in the rule's ``timezone`` (default
  UTC); a bare date as ``end`` means the end of that day. RRULEs are read as windows read them
  (:mod:`shared.domain.windows`: local wall clock, DST gaps and folds decided there) and a
  recurring freeze lasts ``duration`` of elapsed time from each occurrence. ``scope`` is a chat
  scope (:func:`shared.domain.commands.parse_scope`); a target or window it names must exist
  (:func:`freeze_problems`, run when the fleet loads), so a typo does not freeze nothing.
* **Evaluation** is pure and in UTC: :func:`upcoming` gives the freezes (one per occurrence)
  overlapping a span, :func:`fleet_freezes` those in force at an instant (one per rule: the
  occurrence ending last), :func:`blocking` the covering freeze that ends last.
* **Chat freezes** are stored by the control code as plain dicts; :func:`to_stored` and
  :func:`from_stored` are the one format both sides read and write:
  ``{name, scope, starts_at, ends_at, reason, by, source}`` (instants as ISO 8601; ``id`` is read
  as ``name`` when ``name`` is absent).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shared.domain.commands import SCOPE_USAGE, CommandError, Scope, TargetScope, WindowScope, parse_scope
from shared.domain.durations import Duration
from shared.domain.windows import occurrences, schedule_problem, timezone_problem

if TYPE_CHECKING:  # the fleet's models import this module; at run time only values pass
    from shared.domain.fleet import Fleet, Window

__all__ = [
    "ActiveFreeze",
    "FreezeRule",
    "blocking",
    "fleet_freezes",
    "freeze_problems",
    "from_stored",
    "to_stored",
    "upcoming",
]

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day(value: Any, *, end: bool) -> Any:
    # YAML reads `2026-11-27` as a date: a blackout *date* runs from that day's midnight, and an
    # end date includes its day (through the next midnight), as people write blackout dates
    if isinstance(value, str) and _DAY.match(value.strip()):
        value = date.fromisoformat(value.strip())
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value + timedelta(days=1) if end else value, time())
    return value


#: (the JSON Schema says what the file may hold: a date-time or a bare date)
_WHEN = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "format": "date"},
            {"type": "null"},
        ]
    }
)
_Start = Annotated[datetime | None, BeforeValidator(functools.partial(_day, end=False)), _WHEN]
_End = Annotated[datetime | None, BeforeValidator(functools.partial(_day, end=True)), _WHEN]


class FreezeRule(BaseModel):
    """One ``freezes:`` entry of the fleet file: a blackout span or a recurring freeze."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,62}$")
    #: a scope as the chat grammar writes it: a target, kind:<kind>, window:<name>, wave:<n>, all
    scope: str = "all"
    reason: str = Field(min_length=1, max_length=500)
    start: _Start = None
    end: _End = None
    rrule: str | None = None
    duration: Duration | None = None
    #: where times without an offset, dates and the rrule's wall clock are read
    timezone: str = "UTC"

    @field_validator("scope")
    @classmethod
    def _scope(cls, v: str) -> str:
        try:
            parse_scope(v)
        except CommandError as exc:
            raise ValueError(f"{exc.message} (a scope is {SCOPE_USAGE})") from None
        return v

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, v: str | None) -> str | None:
        problem = schedule_problem(v, None)
        if problem is not None:
            raise ValueError(problem)
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        problem = timezone_problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _shape(self) -> FreezeRule:
        span = self.start is not None or self.end is not None
        recurring = self.rrule is not None or self.duration is not None
        if span and recurring:
            raise ValueError("give start and end (a blackout) or rrule and duration (recurring), not both")
        if not span and not recurring:
            raise ValueError("give start and end (a blackout) or rrule and duration (a recurring freeze)")
        if span:
            if self.start is None or self.end is None:
                raise ValueError("a blackout needs both start and end")
            starts, ends = self.span
            if ends <= starts:
                raise ValueError(f"end {ends.isoformat()} must be after start {starts.isoformat()}")
        else:
            if self.rrule is None or self.duration is None:
                raise ValueError("a recurring freeze needs both rrule and duration")
            if self.duration <= timedelta(0):
                raise ValueError("a recurring freeze's duration must be longer than zero")
        return self

    @property
    def scope_value(self) -> Scope:
        return parse_scope(self.scope)

    @property
    def span(self) -> tuple[datetime, datetime]:
        """A blackout's (start, end) as aware UTC instants (ValueError for a recurring rule)."""
        if self.start is None or self.end is None:
            raise ValueError(f"freeze {self.name!r} is recurring, not a blackout")
        return self._instant(self.start), self._instant(self.end)

    def _instant(self, dt: datetime) -> datetime:
        if dt.tzinfo is None:  # wall clock in the rule's zone; a DST gap/fold as windows decide it
            dt = dt.replace(tzinfo=ZoneInfo(self.timezone), fold=0)
        return dt.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ActiveFreeze:
    """One freeze over one span of time (UTC instants), from the fleet file or from chat."""

    name: str
    scope: Scope
    scope_text: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    source: Literal["fleet", "chat"] = "fleet"
    #: who froze it (an rbac identity id) — None for the fleet file's
    by: str | None = None

    def in_force(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    @property
    def summary(self) -> str:
        """``black-friday (all) until 2026-11-30T23:59:59+00:00: peak traffic``, for messages."""
        return f"{self.name} ({self.scope_text}) until {self.ends_at.isoformat()}: {self.reason}"


@functools.lru_cache(maxsize=256)
def _window(rrule: str, duration: timedelta, timezone: str) -> Window:
    # a recurring freeze occurs exactly as a window with its rrule would open: one way to read RRULEs
    from shared.domain.fleet import Window

    return Window(rrule=rrule, duration=duration, timezone=timezone)


def _active(rule: FreezeRule, starts: datetime, ends: datetime) -> ActiveFreeze:
    return ActiveFreeze(rule.name, rule.scope_value, rule.scope, starts, ends, rule.reason)


def upcoming(rules: Iterable[FreezeRule], start: datetime, end: datetime) -> list[ActiveFreeze]:
    """Every freeze (one per occurrence of a recurring rule) overlapping ``[start, end)``, by start."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    out: list[ActiveFreeze] = []
    for rule in rules:
        if rule.rrule is None or rule.duration is None:
            starts, ends = rule.span
            if starts < end and start < ends:
                out.append(_active(rule, starts, ends))
            continue
        window = _window(rule.rrule, rule.duration, rule.timezone)
        for occ in occurrences(window, start - rule.duration, end):
            if occ.closes_at > start:
                out.append(_active(rule, occ.opens_at, occ.closes_at))
    return sorted(out, key=lambda f: (f.starts_at, f.name))


def fleet_freezes(rules: Iterable[FreezeRule], now: datetime) -> list[ActiveFreeze]:
    """The fleet file's freezes in force at ``now``: one per rule (of overlapping occurrences of a
    recurring one, the one ending last), by name."""
    last: dict[str, ActiveFreeze] = {}
    for f in upcoming(rules, now, now + timedelta(microseconds=1)):
        if f.name not in last or f.ends_at > last[f.name].ends_at:
            last[f.name] = f
    return sorted(last.values(), key=lambda f: f.name)


def blocking(
    freezes: Iterable[ActiveFreeze],
    *,
    target: str,
    kind: str,
    window: str | None,
    wave: int,
    now: datetime | None = None,
) -> ActiveFreeze | None:
    """Of ``freezes`` (those in force at ``now``, when given), the one covering a run with these
    facts that ends last; None when none covers it."""
    from shared.domain.scopes import covers  # (scopes imports the fleet, which imports this module)

    found = [
        f
        for f in freezes
        if (now is None or f.in_force(now))
        and covers(f.scope, target=target, kind=kind, window=window, wave=wave)
    ]
    return max(found, key=lambda f: f.ends_at, default=None)


def to_stored(f: ActiveFreeze) -> dict[str, Any]:
    """``f`` as a JSON-ready dict, the form chat freezes are kept in (:func:`from_stored` reads it)."""
    return {
        "name": f.name,
        "scope": f.scope_text,
        "starts_at": f.starts_at.isoformat(),
        "ends_at": f.ends_at.isoformat(),
        "reason": f.reason,
        "by": f.by,
        "source": f.source,
    }


def _stored_instant(doc: Mapping[str, Any], key: str) -> datetime:
    value = doc.get(key)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            pass  # refused just below, naming the key
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"stored freeze: {key} is not an aware ISO 8601 time: {str(value)[:80]!r}")
    return value.astimezone(UTC)


def from_stored(doc: Mapping[str, Any]) -> ActiveFreeze:
    """A stored freeze (:func:`to_stored`'s form; ``source`` defaults to ``chat``); ValueError
    naming what is wrong with a malformed one."""
    name = doc.get("name") or doc.get("id")
    if not isinstance(name, str) or not name:
        raise ValueError("stored freeze: no name")
    scope = doc.get("scope")
    if not isinstance(scope, str):
        raise ValueError(f"stored freeze {name!r}: no scope")
    source: Literal["fleet", "chat"]
    match doc.get("source") or "chat":
        case "chat":
            source = "chat"
        case "fleet":
            source = "fleet"
        case other:
            raise ValueError(f"stored freeze {name!r}: unknown source {str(other)[:40]!r}")
    by = doc.get("by")
    return ActiveFreeze(
        name=name,
        scope=parse_scope(scope),
        scope_text=scope.strip(),
        starts_at=_stored_instant(doc, "starts_at"),
        ends_at=_stored_instant(doc, "ends_at"),
        reason=str(doc.get("reason") or ""),
        source=source,
        by=None if by is None else str(by),
    )


def freeze_problems(fleet: Fleet) -> Sequence[tuple[tuple[str | int, ...], str, Any]]:
    """What is wrong with the fleet's ``freezes:`` as a whole — (where, message, value) each:
    a name given twice, a scope naming a target or window the fleet does not have."""
    out: list[tuple[tuple[str | int, ...], str, Any]] = []
    first: dict[str, int] = {}
    targets = {t.name for t in fleet.targets}
    for i, rule in enumerate(fleet.freezes):
        if rule.name in first:
            out.append(
                (
                    ("freezes", i, "name"),
                    f"duplicate freeze name {rule.name!r} (also freezes[{first[rule.name]}])",
                    rule.name,
                )
            )
        first.setdefault(rule.name, i)
        match rule.scope_value:
            case TargetScope(name) if name not in targets:
                out.append((("freezes", i, "scope"), f"unknown target {name!r}", rule.scope))
            case WindowScope(name) if name not in fleet.windows:
                known = ", ".join(sorted(fleet.windows)) or "none defined"
                out.append(
                    (("freezes", i, "scope"), f"unknown window {name!r} (windows: {known})", rule.scope)
                )
    return out
