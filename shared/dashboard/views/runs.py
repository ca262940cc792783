"""The runs page and a run's detail: :func:`runs_view`, :func:`run_view`, and :func:`allowed_actions` (what a role may do to a run)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.dashboard.views.models import (
    ACTIONS,
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    Action,
    ApprovalState,
    AuditEntry,
    RunDetail,
    RunRow,
    RunsPage,
    StageRow,
    VendorError,
)
from shared.dashboard.views.reading import (
    approval_of,
    as_int,
    as_str,
    ordered_stages,
    row_of,
    waves_entry,
    when_of,
)
from shared.domain.access import Principal
from shared.domain.commands import MIN_ROLE, RUN_ID
from shared.domain.fleet import Fleet
from shared.domain.rbac import Identity, approver_groups, authorize
from shared.domain.stages import STAGES
from shared.engine.control import control_state, paused_by
from shared.store import Store
from shared.store.base import Value
from shared.store.claims import claim_key
from shared.store.ledger import PENDING, TERMINAL, RunState

__all__ = ["allowed_actions", "run_view", "runs_view"]

# --- runs -------------------------------------------------------------------------------------


def _matches(run: RunRow, **filters: Any) -> bool:
    return all(v is None or getattr(run, k) == v for k, v in filters.items())


async def runs_view(
    store: Store,
    fleet: Fleet,
    now: datetime,
    *,
    state: RunState | str | None = None,
    kind: str | None = None,
    window: str | None = None,
    wave: int | None = None,
    target: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> RunsPage:
    """The runs matching the filters, newest first, page ``page`` of ``per_page`` (a page past
    the last is empty); ``counts`` per state over the filters other than ``state``."""
    page, per_page = max(1, page), max(1, min(per_page, MAX_PER_PAGE))
    rows = [row_of(r) for r in reversed(await store.ledger.runs())]
    others = [r for r in rows if _matches(r, kind=kind, window=window, wave=wave, target=target)]
    counts = Counter(r.state for r in others)
    chosen = others if state is None else [r for r in others if r.state == RunState(state)]
    start = (page - 1) * per_page
    return RunsPage(
        counts={s: counts.get(s, 0) for s in RunState},
        total=len(chosen),
        page=page,
        per_page=per_page,
        pages=max(1, -(-len(chosen) // per_page)),
        items=chosen[start : start + per_page],
    )


def _timeline(run: Value, now: datetime) -> list[StageRow]:
    entries: Mapping[str, Value] = run.get("stages") or {}
    flow = STAGES.get(str(run.get("kind")), ())
    order = [*flow, *(s for s in entries if s not in flow)]
    out: list[StageRow] = []
    # a stage without a start of its own (a synchronous call) began when the one before it ended
    previous_end = when_of(run.get("released_at"))
    for name in order:
        e = entries.get(name)
        if e is None:
            out.append(StageRow(name=name, state="pending"))
            continue
        state = str(e.get("state") or "running")
        started = when_of(e.get("started_at")) or (previous_end if state != "waiting" else None)
        ended = when_of(e.get("ended_at"))
        until = ended or (now if state == "running" else None)
        duration = None if started is None or until is None else max(0.0, (until - started).total_seconds())
        out.append(
            StageRow(
                name=name,
                state=state,
                started_at=started,
                ended_at=ended,
                duration_s=duration,
                calls=as_int(e.get("calls")),
                polls=as_int(e.get("status_calls")),
                job_id=as_str(e.get("job_id")) or None,
                progress=as_str(e.get("progress")),
                waiting_until=when_of(e.get("waiting_until")),
                reason=as_str(e.get("reason")),
                in_doubt=bool(e.get("in_doubt")),
            )
        )
        previous_end = ended or previous_end
    return out


async def _error(store: Store, run: Value) -> VendorError | None:
    """The failed stage's code and message (the ledger's), its request id from the stage entry or
    else from the claim's refusal (which keeps the vendor's request id)."""
    failed = [(s, e) for s, e in ordered_stages(run) if e.get("state") == "failed" and e.get("code")]
    stage: str | None
    if failed:
        stage, entry = failed[-1]
        code, message, request_id = str(entry["code"]), str(entry.get("message", "")), entry.get("request_id")
    elif run.get("state") == RunState.FAILED and run.get("code"):
        stage, code, message = (
            as_str(run.get("failed_stage")) or None,
            str(run["code"]),
            str(run.get("message", "")),
        )
        request_id = None
    else:
        return None
    if request_id is None and stage and run.get("target") and run.get("to_version"):
        claim = await store.claims.get(claim_key(str(run["target"]), stage, str(run["to_version"])))
        for found in (None if claim is None else claim.refusal, None if claim is None else claim.conflict):
            if found and found.get("code") == code and found.get("request_id"):
                request_id = found["request_id"]
                break
    return VendorError(stage=stage, code=code, message=message, request_id=as_str(request_id))


def _actions(run: Value, approval: ApprovalState | None, paused: str | None, halted: bool) -> list[Action]:
    state = run.get("state")
    out: list[Action] = []
    waiting = state == RunState.AWAITING_APPROVAL and approval is not None
    if waiting and approval is not None and not approval.approved:
        out.append("approve")
    if waiting:
        out.append("deny")
    target = str(run.get("target", ""))
    if state not in TERMINAL and paused != target:
        out.append("pause")
    if paused == target or (halted and state == RunState.FAILED):
        out.append("resume")
    begun = "upgrade" in (run.get("stages") or {})
    if state in PENDING or (state == RunState.RUNNING and not begun and not run.get("cancel_requested")):
        out.append("cancel")
    return [a for a in ACTIONS if a in out]


async def run_view(store: Store, fleet: Fleet, now: datetime, run_id: str) -> RunDetail | None:
    """Everything the run page shows of ``run_id``; None when there is no such run."""
    run = await store.ledger.run(run_id) if RUN_ID.fullmatch(run_id) else None
    if run is None:
        return None
    doc, entry = await waves_entry(store, run)
    state = None if entry is None else entry.get("approval")
    approval = None if state is None else approval_of(state, now)
    control = await control_state(store.kv)
    facts = {k: run.get(k) for k in ("target", "kind", "window", "wave")}
    pause = paused_by(control, facts) if run.get("state") not in TERMINAL else None
    target_paused = str(run.get("target", "")) in control["pauses"]
    halt: Value | None = (doc or {}).get("halted")
    halted_by_it = halt is not None and halt.get("target") == run.get("target")
    cancel = run.get("cancel_requested")
    audit = await store.audit.entries(run=run_id)
    return RunDetail(
        run=row_of(run),
        stages=_timeline(run, now),
        error=await _error(store, run),
        approval=approval,
        audit=[AuditEntry.model_validate({**a, "id": str(a.get("id"))}) for a in audit],
        actions=_actions(run, approval, str(run.get("target")) if target_paused else pause, halted_by_it),
        paused_by=pause,
        halted=as_str(halt.get("reason")) if halt else None,
        cancel_requested=as_str(cancel.get("cancelled_by")) if isinstance(cancel, dict) else None,
        reason=as_str(run.get("reason") or run.get("message")),
    )


def allowed_actions(fleet: Fleet, principal: Principal | Identity, run: RunDetail) -> list[Action]:
    """Of ``run.actions``, those ``principal`` (a bearer token: rbac identity ``token:<name>``) may
    take: the command's least role (:data:`shared.domain.commands.MIN_ROLE`) on the run's target,
    and for ``approve`` membership of one of the request's ``approvers`` groups when it names any.
    A run of a target the fleet no longer has allows nothing."""
    who = principal if isinstance(principal, Identity) else Identity(f"token:{principal.name}", "token")
    try:
        target = fleet.target(run.run.target)
    except KeyError:
        return []
    out: list[Action] = []
    for action in run.actions:
        if authorize(fleet, who, MIN_ROLE[action], [target]) is not None:
            continue
        groups = run.approval.approvers if run.approval is not None else []
        if action == "approve" and groups and not approver_groups(fleet, who) & set(groups):
            continue
        out.append(action)
    return out
