"""Reading the stored documents (ledger runs, waves entries, freezes) into the views' plain values — helpers of every view."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.dashboard.views.models import (
    ApprovalState,
    GrantRow,
    RunRow,
)
from shared.domain.approvals import approved, expired
from shared.domain.fleet import Fleet, Target
from shared.domain.freezes import ActiveFreeze, from_stored, upcoming
from shared.domain.scopes import covers
from shared.domain.stages import STAGES
from shared.domain.waves import BUCKET, window_key
from shared.store import Store
from shared.store.base import Value
from shared.store.ledger import RunState

__all__ = [
    "approval_of",
    "as_int",
    "as_str",
    "covers_target",
    "freezes_between",
    "ordered_stages",
    "row_of",
    "state_of",
    "waves_entry",
    "when_of",
]

# --- reading the stored documents -------------------------------------------------------------


def when_of(value: Any) -> datetime | None:
    """A stored instant (ISO 8601, ``Z`` or an offset; or epoch seconds) as aware UTC; None if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).astimezone(UTC)


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_str(value: Any) -> str | None:
    return None if value is None else str(value)


def state_of(value: Any) -> RunState:
    try:
        return RunState(str(value))
    except ValueError:  # a run known only by a write that carried no state
        return RunState.PLANNED


def ordered_stages(run: Value) -> list[tuple[str, Value]]:
    """The run's stage entries in its kind's order (stages the kind does not list, after)."""
    entries: Mapping[str, Value] = run.get("stages") or {}
    order = STAGES.get(str(run.get("kind")), ())
    known = [(s, entries[s]) for s in order if s in entries]
    return known + [(s, e) for s, e in entries.items() if s not in order]


def row_of(run: Value) -> RunRow:
    stages = ordered_stages(run)
    current = next((s for s in reversed(stages) if s[1].get("state") != "succeeded"), None)
    if current is None and stages:
        current = stages[-1]
    wave = run.get("wave")
    return RunRow(
        id=str(run.get("id")),
        target=str(run.get("target", "")),
        kind=as_str(run.get("kind")),
        from_version=as_str(run.get("from_version")),
        to_version=as_str(run.get("to_version")),
        window=as_str(run.get("window")),
        wave=wave if isinstance(wave, int) and not isinstance(wave, bool) else None,
        state=state_of(run.get("state")),
        stage=None if current is None else current[0],
        stage_state=None if current is None else as_str(current[1].get("state")),
        planned_at=when_of(run.get("planned_at")),
        started_at=when_of(run.get("released_at")),
        ended_at=when_of(run.get("ended_at")),
        upgrade_calls=as_int(run.get("upgrade_calls")),
        status_calls=as_int(run.get("status_calls")),
        approved_by=[str(x) for x in run.get("approved_by") or []],
    )


async def waves_entry(store: Store, run: Value) -> tuple[Value | None, Value | None]:
    """The run's waves document (its window's) and its entry there (None when it left)."""
    e = await store.kv.get(BUCKET, window_key(run.get("window")))
    if e is None:
        return None, None
    return e.value, (e.value.get("runs") or {}).get(run.get("id"))


def approval_of(state: Value, now: datetime) -> ApprovalState:
    return ApprovalState(
        need=int(state.get("need", 1)),
        granted=[GrantRow(who=str(g.get("who")), at=when_of(g.get("at"))) for g in state.get("granted", [])],
        approvers=[str(a) for a in state.get("approvers", [])],
        expires_at=when_of(state.get("expires_at")),
        occurrence=when_of(state.get("occurrence")),
        expired=expired(state, now),
        approved=approved(state),
        requested_by=as_str(state.get("requested_by")),
    )


def freezes_between(
    fleet: Fleet, control: Mapping[str, Any], start: datetime, end: datetime
) -> list[ActiveFreeze]:
    """Fleet rules and chat freezes overlapping ``[start, end)``, by start."""
    out = upcoming(fleet.freezes, start, end)
    for stored in (control.get("freezes") or {}).values():
        try:
            f = from_stored(stored)
        except ValueError:  # a malformed stored freeze is not the page's to crash on
            continue
        if f.starts_at < end and start < f.ends_at:
            out.append(f)
    return sorted(out, key=lambda f: (f.starts_at, f.name))


def covers_target(f: ActiveFreeze, t: Target) -> bool:
    return covers(f.scope, target=t.name, kind=t.kind, window=t.window, wave=t.wave)
