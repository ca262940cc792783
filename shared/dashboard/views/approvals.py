"""The approvals page: :func:`approvals_view`."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.dashboard.views.models import (
    ApprovalRow,
    ApprovalsView,
)
from shared.dashboard.views.reading import (
    approval_of,
    as_int,
    as_str,
    when_of,
)
from shared.domain.approvals import approved
from shared.domain.fleet import Fleet
from shared.domain.waves import BUCKET, window_key
from shared.store import Store
from shared.store.ledger import RunState

__all__ = ["approvals_view"]

# --- approvals --------------------------------------------------------------------------------


async def approvals_view(store: Store, fleet: Fleet, now: datetime) -> ApprovalsView:
    """The runs whose approval request has fewer grants than it needs (expired ones flagged),
    soonest expiry first."""
    items = []
    for key in await store.kv.keys(BUCKET):
        e = await store.kv.get(BUCKET, key)
        for rid, entry in sorted(((e.value.get("runs") or {}) if e is not None else {}).items()):
            state = entry.get("approval")
            if state is None or approved(state) or entry.get("state") != "planned":
                continue
            run = await store.ledger.run(rid)
            if run is not None and run.get("state") != RunState.AWAITING_APPROVAL:
                continue  # the ledger says it moved on (denied, cancelled) before the entry left
            a = approval_of(state, now)
            items.append(
                ApprovalRow(
                    run=rid,
                    target=str(entry.get("target")),
                    kind=as_str(entry.get("kind")),
                    from_version=as_str(entry.get("from_version")),
                    to_version=str(entry.get("to_version")),
                    window=None if key == window_key(None) else key,
                    wave=as_int(entry.get("wave")),
                    need=a.need,
                    granted=a.granted,
                    approvers=a.approvers,
                    expires_at=a.expires_at,
                    occurrence=a.occurrence,
                    expired=a.expired,
                    requested_by=a.requested_by,
                    planned_at=when_of(entry.get("planned_at")),
                )
            )
    far = datetime.max.replace(tzinfo=UTC)
    items.sort(key=lambda i: (i.expires_at or far, i.run))
    return ApprovalsView(at=now, items=items)
