"""The fleet page: :func:`fleet_view`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from shared.dashboard.views.models import (
    FREEZE_HORIZON,
    FleetView,
    FreezeRow,
    LastRun,
    Occurrence,
    TargetRow,
)
from shared.dashboard.views.reading import (
    as_str,
    covers_target,
    freezes_between,
    state_of,
)
from shared.domain.fleet import Fleet
from shared.domain.freezes import ActiveFreeze
from shared.domain.plan import approval_rule, matching_policies
from shared.domain.windows import OpenWindow, next_open, window_at
from shared.engine.control import control_state, paused_by
from shared.ops.inventory import Live
from shared.store import Store
from shared.store.base import Value

__all__ = ["fleet_view"]

# --- fleet ------------------------------------------------------------------------------------


def _occurrence(name: str, occ: OpenWindow, now: datetime) -> Occurrence:
    return Occurrence(
        window=name,
        opens_at=occ.opens_at,
        closes_at=occ.closes_at,
        cutoff_at=occ.cutoff_at,
        open_now=occ.opens_at <= now < occ.closes_at,
    )


def _freeze_row(f: ActiveFreeze, now: datetime) -> FreezeRow:
    return FreezeRow(
        name=f.name,
        scope=f.scope_text,
        starts_at=f.starts_at,
        ends_at=f.ends_at,
        reason=f.reason,
        source=f.source,
        by=f.by,
        in_force=f.in_force(now),
    )


async def fleet_view(
    store: Store, fleet: Fleet, now: datetime, live: Mapping[str, Live] | None = None
) -> FleetView:
    """Every target of the fleet, in fleet order (see the module docstring); ``live``: the
    vendors' looks by target name (:mod:`shared.dashboard.live`), shown beside ours."""
    runs = await store.ledger.runs()
    last: dict[str, Value] = {}
    for run in runs:  # oldest first: the last one seen is the newest
        last[str(run.get("target"))] = run
    control = await control_state(store.kv)
    freezes = freezes_between(fleet, control, now, now + FREEZE_HORIZON)
    nexts: dict[str, Occurrence | None] = {}
    for name, window in fleet.windows.items():
        occ = window_at(window, now) or next_open(window, now)
        nexts[name] = None if occ is None else _occurrence(name, occ, now)
    rows = []
    for t in fleet.targets:
        ledger_version = await store.ledger.version(t.name)
        policies = matching_policies(fleet, t)
        facts = {"target": t.name, "kind": t.kind, "window": t.window, "wave": t.wave}
        r = last.get(t.name)
        look = (live or {}).get(t.name)
        rows.append(
            TargetRow(
                name=t.name,
                kind=t.kind,
                window=t.window,
                wave=t.wave,
                product=t.product_key,
                version=ledger_version or t.version,
                version_source="ledger" if ledger_version else "fleet" if t.version else None,
                tracks=[str(p.track) for p in policies if p.track is not None],
                min_release_age_s=max((p.min_release_age.total_seconds() for p in policies), default=0.0),
                skip=sorted({str(v) for p in policies for v in p.skip}),
                frozen=any(p.frozen for p in policies),
                approval=approval_rule(fleet, t) is not None,
                next_window=None if t.window is None else nexts.get(t.window),
                freezes=[_freeze_row(f, now) for f in freezes if covers_target(f, t)],
                paused_by=paused_by(control, facts),
                vendor_version=None if look is None else look.version,
                vendor_state=None if look is None else look.state,
                vendor_may_move_to=None if look is None else look.may_move_to,
                vendor_error=None if look is None else look.error,
                drift=look is not None and look.drift,
                last_run=None
                if r is None
                else LastRun(
                    id=str(r.get("id")),
                    state=state_of(r.get("state")),
                    to_version=as_str(r.get("to_version")),
                ),
            )
        )
    return FleetView(at=now, targets=rows)
