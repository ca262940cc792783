"""Approval events: the request posted for a run, and the run approved or denied.

Every id is derived from the run and the request's occurrence, never from the delivery: a
request re-posted by a redelivery (or by the planner and the window clock both) is one event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from events.catalog import ApprovalRequested, RunApproved, RunDenied, T
from events.envelope import Event, consequence
from shared.domain.approvals import approvers_of
from shared.domain.waves import ANYTIME

__all__ = ["approved_event", "denied_event", "request_event"]


def _window(key: str) -> str | None:
    return None if key == ANYTIME else key


def request_event(rid: str, entry: dict[str, Any], key: str) -> Event[ApprovalRequested]:
    """The approval request of a run's waves ``entry`` (key: run and occurrence)."""
    state = entry["approval"]
    data = ApprovalRequested(
        run=rid,
        target=entry["target"],
        kind=entry["kind"],
        from_version=entry.get("from_version") or "unknown",
        to_version=entry["to_version"],
        window=_window(key),
        wave=entry.get("wave", 0),
        occurrence=state.get("occurrence"),
        expires_at=datetime.fromisoformat(state["expires_at"]),
        min_approvals=state.get("need", 1),
        approvers=list(state.get("approvers", [])),
    )
    return consequence(
        T.APPROVAL_REQUESTED,
        data,
        key=(rid, T.APPROVAL_REQUESTED, state.get("occurrence") or state["expires_at"]),
        subject=entry["target"],
        runid=rid,
        target=entry["target"],
        kind=entry["kind"],
    )


def approved_event(rid: str, entry: dict[str, Any], key: str) -> Event[RunApproved]:
    """``run.approved`` once the request has every approval it needs (key: run and occurrence)."""
    state = entry["approval"]
    data = RunApproved(
        run=rid,
        target=entry["target"],
        to_version=entry["to_version"],
        window=_window(key),
        approved_by=approvers_of(state),
    )
    return consequence(
        T.RUN_APPROVED,
        data,
        key=(rid, T.RUN_APPROVED, state.get("occurrence") or state["expires_at"]),
        subject=entry["target"],
        runid=rid,
        target=entry["target"],
        kind=entry["kind"],
    )


def denied_event(rid: str, run: dict[str, Any], *, by: str, reason: str) -> Event[RunDenied]:
    """``run.denied`` (key: the run: it is denied once)."""
    data = RunDenied(
        run=rid,
        target=str(run.get("target", "")),
        to_version=str(run.get("to_version", "")),
        window=run.get("window"),
        by=by,
        reason=reason[:2000] or "denied",
    )
    return consequence(
        T.RUN_DENIED,
        data,
        key=(rid, T.RUN_DENIED),
        subject=data.target,
        runid=rid,
        target=data.target,
        kind=run.get("kind"),
    )
