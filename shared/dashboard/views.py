"""The read models ("views") of the dashboard: what every page and every ``GET /api/…`` route shows.

Each view is a pydantic model (the JSON API's response model; the OpenAPI document is generated
from them, :mod:`shared.dashboard.openapi`) built by an async function of the store, the fleet
and ``now`` (the domain clock's instant). The functions only read — the ledger (``runs``,
``versions``), the waves documents (approval state, halts), the control document (pauses, chat
freezes) and the audit — and never call a vendor: a page costs store reads, nothing else.

* :func:`runs_view` → :class:`RunsPage`: the runs, newest first (created last first), filtered by
  state, kind, window, wave and target, a page of them; ``counts`` per state over the *other*
  filters (the state filter picks one of the counts, it does not zero the rest).
* :func:`run_view` → :class:`RunDetail` (None for an unknown run): the run's row, its stage
  timeline in the kind's stage order (:data:`shared.domain.stages.STAGES`), the last vendor error
  (the failed stage's code and message — its request id from the stage entry, else the stage's
  claim refusal), its approval state, its audit entries and the :data:`Action` s its state allows
  (:func:`allowed_actions` narrows them to what a viewer's role allows).
* :func:`fleet_view` → :class:`FleetView`: per target its current version (the ledger's, else the
  fleet file's), the policies that apply, its window's open or next occurrence, the freezes in
  force or coming (within :data:`FREEZE_HORIZON`) covering it, its last run. ``vendor_version``
  is always None here: asking the vendor is ``upshift inventory``'s job, not a page's.
* :func:`calendar_view` → :class:`CalendarView`: per window its occurrences open in
  ``[now, now + days)`` (the one open at ``now`` included) — each instant in UTC, the window's time zone and the viewer's ``tz`` —
  and the freezes (fleet rules and chat freezes) overlapping the span, with the windows and
  targets each covers.
* :func:`approvals_view` → :class:`ApprovalsView`: the runs waiting for approval (granted fewer
  than needed), with who granted, which groups may approve, until when, and whether the request
  expired.

Query parsing shared by the API and the pages: :func:`runs_query` and :func:`calendar_query` turn
a query string's parameters into the functions' keyword filters, or raise :class:`BadQuery`
naming the parameter (the API answers 400 with it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from shared.domain.access import Principal
from shared.domain.approvals import approved, expired
from shared.domain.commands import KINDS, MIN_ROLE, RUN_ID, TARGET_NAME
from shared.domain.fleet import Fleet, Target
from shared.domain.freezes import ActiveFreeze, from_stored, upcoming
from shared.domain.plan import approval_rule, matching_policies
from shared.domain.rbac import Identity, approver_groups, authorize
from shared.domain.scopes import covers
from shared.domain.stages import STAGES
from shared.domain.waves import BUCKET, window_key
from shared.domain.windows import OpenWindow, next_open, occurrences, timezone_problem, window_at
from shared.engine.control import control_state, paused_by
from shared.store import Store
from shared.store.base import Value
from shared.store.claims import claim_key
from shared.store.ledger import PENDING, TERMINAL, RunState

__all__ = [
    "ACTIONS",
    "DEFAULT_DAYS",
    "DEFAULT_PER_PAGE",
    "FREEZE_HORIZON",
    "MAX_DAYS",
    "MAX_PER_PAGE",
    "Action",
    "ApprovalRow",
    "ApprovalState",
    "ApprovalsView",
    "AuditEntry",
    "BadQuery",
    "CalendarFreeze",
    "CalendarOccurrence",
    "CalendarView",
    "CalendarWindow",
    "FleetView",
    "FreezeRow",
    "GrantRow",
    "Instant",
    "LastRun",
    "Occurrence",
    "RunDetail",
    "RunRow",
    "RunsPage",
    "StageRow",
    "TargetRow",
    "VendorError",
    "allowed_actions",
    "approvals_view",
    "calendar_query",
    "calendar_view",
    "fleet_view",
    "run_view",
    "runs_query",
    "runs_view",
]

#: ``GET /api/runs``: runs per page without ``per_page``, and the most one may ask for.
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
#: ``GET /api/calendar``: days shown without ``days``, and the most one may ask for.
DEFAULT_DAYS = 14
MAX_DAYS = 31
#: How far ahead the fleet view looks for freezes coming.
FREEZE_HORIZON = timedelta(days=DEFAULT_DAYS)

Action = Literal["approve", "deny", "pause", "resume", "cancel"]
#: Every action a run page may offer, in the order its buttons are shown.
ACTIONS: tuple[Action, ...] = get_args(Action)
StageState = Literal["pending", "waiting", "running", "succeeded", "failed"]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- the models -------------------------------------------------------------------------------


class RunRow(_View):
    """One run as the runs list shows it."""

    id: str
    target: str
    kind: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    window: str | None = None
    wave: int | None = None
    state: RunState
    #: the last stage entry (in the kind's order) not succeeded, else the last one; None before any
    stage: str | None = None
    stage_state: str | None = None
    planned_at: datetime | None = None
    #: when ``start_upgrades`` released it (``released_at``)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: vendor calls that may change the version (the upgrade stage's), and status polls
    upgrade_calls: int = 0
    status_calls: int = 0
    approved_by: list[str] = []


class RunsPage(_View):
    """A page of runs, newest first."""

    #: runs per state over the filters other than ``state`` (every state, zeros included)
    counts: dict[RunState, int]
    #: runs matching every filter
    total: int
    page: int
    per_page: int
    pages: int
    items: list[RunRow]


class StageRow(_View):
    """One stage of a run's timeline (``pending``: not reached yet)."""

    name: str
    state: StageState | str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: ended − started (or now − started while it runs); None when either is unknown
    duration_s: float | None = None
    #: vendor calls of the stage, and status polls of its job
    calls: int = 0
    polls: int = 0
    job_id: str | None = None
    progress: str | None = None
    #: a stage waiting for its window: until when, and why
    waiting_until: datetime | None = None
    reason: str | None = None
    #: its call's answer was lost: Upshift looks at the vendor before calling again
    in_doubt: bool = False


class VendorError(_View):
    """What the vendor (or the pipeline) said when the run's stage failed."""

    stage: str | None = None
    code: str
    message: str
    request_id: str | None = None


class GrantRow(_View):
    who: str
    at: datetime | None = None


class ApprovalState(_View):
    """A run's approval request (its waves entry's ``approval``)."""

    need: int
    granted: list[GrantRow]
    #: ``rbac:`` grants whose members may approve (empty: anyone approver or above on the target)
    approvers: list[str]
    expires_at: datetime | None = None
    #: the window occurrence (its opening) the request is bound to; None without a window
    occurrence: datetime | None = None
    expired: bool = False
    approved: bool = False
    requested_by: str | None = None


class AuditEntry(_View):
    """An audit entry (:mod:`shared.store.audit`); the platform's own ids are kept as recorded."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    at: str | None = None
    platform: str | None = None
    actor: str | None = None
    via: str | None = None
    user: str | None = None
    command: str | None = None
    text: str | None = None
    run: str | None = None
    scope: str | None = None
    outcome: str | None = None
    reply: str | None = None


class RunDetail(_View):
    """One run: its row, its stage timeline, what failed, its approval, its audit, what may be done."""

    run: RunRow
    stages: list[StageRow]
    error: VendorError | None = None
    approval: ApprovalState | None = None
    audit: list[AuditEntry]
    #: the actions the run's state allows (whoever looks); :func:`allowed_actions` for a viewer
    actions: list[Action]
    #: the pause holding it (its scope text), if one covers it
    paused_by: str | None = None
    #: its window is halted (by a failed run): the halt's reason
    halted: str | None = None
    #: who asked to cancel it while it ran (its next stage refuses to begin)
    cancel_requested: str | None = None
    #: how the run ended, in the pipeline's words (denied/cancelled/superseded/failed)
    reason: str | None = None


class Occurrence(_View):
    """One occurrence of a window (UTC instants)."""

    window: str
    opens_at: datetime
    closes_at: datetime
    cutoff_at: datetime
    #: it is open now (``opens_at <= now < closes_at``)
    open_now: bool


class FreezeRow(_View):
    """A freeze (one span of a fleet rule, or a chat freeze)."""

    name: str
    scope: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    source: Literal["fleet", "chat"]
    by: str | None = None
    in_force: bool


class LastRun(_View):
    id: str
    state: RunState
    to_version: str | None = None


class TargetRow(_View):
    """One target of the fleet."""

    name: str
    kind: str
    window: str | None = None
    wave: int
    product: str
    #: the version it runs: the ledger's (what Upshift upgraded it to), else the fleet file's
    version: str | None = None
    version_source: Literal["ledger", "fleet"] | None = None
    #: the vendor's own answer (``upshift inventory``); never asked for by a page: always None here
    vendor_version: str | None = None
    #: the matching policies' tracks (every one must hold), longest soak, skips, frozen
    tracks: list[str] = []
    min_release_age_s: float = 0.0
    skip: list[str] = []
    frozen: bool = False
    #: its runs wait for approval
    approval: bool = False
    #: the window's open occurrence, else its next one (None: no window, or it never opens again)
    next_window: Occurrence | None = None
    #: freezes covering it, in force now or starting within FREEZE_HORIZON
    freezes: list[FreezeRow] = []
    paused_by: str | None = None
    last_run: LastRun | None = None


class FleetView(_View):
    at: datetime
    targets: list[TargetRow]


class Instant(_View):
    """One instant, in UTC, in the window's (or freeze's) time zone, and in the viewer's."""

    utc: datetime
    local: datetime
    viewer: datetime | None = None


class CalendarOccurrence(_View):
    opens: Instant
    closes: Instant
    cutoff: Instant
    #: names of the freezes overlapping it that cover the window or one of its targets
    freezes: list[str] = []


class CalendarWindow(_View):
    name: str
    timezone: str
    schedule: str
    duration_s: float
    cutoff_s: float
    concurrency: int
    targets: list[str]
    occurrences: list[CalendarOccurrence]


class CalendarFreeze(_View):
    name: str
    scope: str
    starts: Instant
    ends: Instant
    reason: str
    source: Literal["fleet", "chat"]
    by: str | None = None
    #: the windows and targets it covers
    windows: list[str]
    targets: list[str]


class CalendarView(_View):
    start: datetime
    end: datetime
    days: int
    #: the viewer's IANA time zone, when given
    tz: str | None = None
    windows: list[CalendarWindow]
    #: targets without a window (always open)
    anytime: list[str]
    freezes: list[CalendarFreeze]


class ApprovalRow(_View):
    """A run waiting for approval."""

    run: str
    target: str
    kind: str | None = None
    from_version: str | None = None
    to_version: str
    window: str | None = None
    wave: int
    need: int
    granted: list[GrantRow]
    approvers: list[str]
    expires_at: datetime | None = None
    occurrence: datetime | None = None
    expired: bool
    requested_by: str | None = None
    planned_at: datetime | None = None


class ApprovalsView(_View):
    at: datetime
    items: list[ApprovalRow]


# --- query parsing ----------------------------------------------------------------------------


class BadQuery(ValueError):
    """A query parameter refused: ``field`` names it, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_STATES = tuple(s.value for s in RunState)


def _whole(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    top = f" to {high}" if high is not None else " or more"
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise BadQuery(name, f"{name} must be a whole number from {low}{top}")
    value = int(raw)
    if value < low or (high is not None and value > high):
        raise BadQuery(name, f"{name} must be a whole number from {low}{top}")
    return value


def _unknown(query: Mapping[str, str], known: Iterable[str]) -> None:
    extra = sorted(set(query) - set(known))
    if extra:
        names = ", ".join(extra)
        raise BadQuery(names, f"unknown parameter(s): {names}")


def runs_query(fleet: Fleet, query: Mapping[str, str]) -> dict[str, Any]:
    """The keyword filters of :func:`runs_view` from a query string's parameters (``state``,
    ``kind``, ``window`` — one of the fleet's —, ``wave``, ``target``, ``page``, ``per_page``
    ≤ :data:`MAX_PER_PAGE`); an empty value is no filter. :class:`BadQuery` naming the parameter."""
    _unknown(query, ("state", "kind", "window", "wave", "target", "page", "per_page"))
    out: dict[str, Any] = {}
    state, kind, window, target = (query.get(k) or None for k in ("state", "kind", "window", "target"))
    if state is not None:
        if state not in _STATES:
            raise BadQuery("state", f"unknown state {state[:40]!r} (states: {', '.join(_STATES)})")
        out["state"] = RunState(state)
    if kind is not None:
        if kind not in KINDS:
            raise BadQuery("kind", f"unknown kind {kind[:40]!r} (kinds: {', '.join(KINDS)})")
        out["kind"] = kind
    if window is not None:
        if window not in fleet.windows:
            known = ", ".join(sorted(fleet.windows)) or "none defined"
            raise BadQuery("window", f"unknown window {window[:40]!r} (windows: {known})")
        out["window"] = window
    if target is not None:
        if not TARGET_NAME.match(target):
            raise BadQuery("target", f"{target[:40]!r} is not a target name")
        out["target"] = target
    if query.get("wave"):
        out["wave"] = _whole(query, "wave", 0, 0, None)
    out["page"] = _whole(query, "page", 1, 1, None)
    out["per_page"] = _whole(query, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    return out


def calendar_query(query: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of :func:`calendar_view` from ``days`` (1…:data:`MAX_DAYS`) and
    ``tz`` (an IANA time zone); :class:`BadQuery` naming the parameter."""
    _unknown(query, ("days", "tz"))
    out: dict[str, Any] = {"days": _whole(query, "days", DEFAULT_DAYS, 1, MAX_DAYS)}
    tz = query.get("tz") or None
    if tz is not None:
        problem = timezone_problem(tz) if len(tz) <= 64 else f"unknown IANA timezone {tz[:40]!r}…"
        if problem is not None:
            raise BadQuery("tz", problem)
        out["tz"] = tz
    return out


# --- reading the stored documents -------------------------------------------------------------


def _when(value: Any) -> datetime | None:
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


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _state(value: Any) -> RunState:
    try:
        return RunState(str(value))
    except ValueError:  # a run known only by a write that carried no state
        return RunState.PLANNED


def _ordered_stages(run: Value) -> list[tuple[str, Value]]:
    """The run's stage entries in its kind's order (stages the kind does not list, after)."""
    entries: Mapping[str, Value] = run.get("stages") or {}
    order = STAGES.get(str(run.get("kind")), ())
    known = [(s, entries[s]) for s in order if s in entries]
    return known + [(s, e) for s, e in entries.items() if s not in order]


def _row(run: Value) -> RunRow:
    stages = _ordered_stages(run)
    current = next((s for s in reversed(stages) if s[1].get("state") != "succeeded"), None)
    if current is None and stages:
        current = stages[-1]
    wave = run.get("wave")
    return RunRow(
        id=str(run.get("id")),
        target=str(run.get("target", "")),
        kind=_str(run.get("kind")),
        from_version=_str(run.get("from_version")),
        to_version=_str(run.get("to_version")),
        window=_str(run.get("window")),
        wave=wave if isinstance(wave, int) and not isinstance(wave, bool) else None,
        state=_state(run.get("state")),
        stage=None if current is None else current[0],
        stage_state=None if current is None else _str(current[1].get("state")),
        planned_at=_when(run.get("planned_at")),
        started_at=_when(run.get("released_at")),
        ended_at=_when(run.get("ended_at")),
        upgrade_calls=_int(run.get("upgrade_calls")),
        status_calls=_int(run.get("status_calls")),
        approved_by=[str(x) for x in run.get("approved_by") or []],
    )


async def _waves_entry(store: Store, run: Value) -> tuple[Value | None, Value | None]:
    """The run's waves document (its window's) and its entry there (None when it left)."""
    e = await store.kv.get(BUCKET, window_key(run.get("window")))
    if e is None:
        return None, None
    return e.value, (e.value.get("runs") or {}).get(run.get("id"))


def _approval(state: Value, now: datetime) -> ApprovalState:
    return ApprovalState(
        need=int(state.get("need", 1)),
        granted=[GrantRow(who=str(g.get("who")), at=_when(g.get("at"))) for g in state.get("granted", [])],
        approvers=[str(a) for a in state.get("approvers", [])],
        expires_at=_when(state.get("expires_at")),
        occurrence=_when(state.get("occurrence")),
        expired=expired(state, now),
        approved=approved(state),
        requested_by=_str(state.get("requested_by")),
    )


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
    rows = [_row(r) for r in reversed(await store.ledger.runs())]
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
    previous_end = _when(run.get("released_at"))
    for name in order:
        e = entries.get(name)
        if e is None:
            out.append(StageRow(name=name, state="pending"))
            continue
        state = str(e.get("state") or "running")
        started = _when(e.get("started_at")) or (previous_end if state != "waiting" else None)
        ended = _when(e.get("ended_at"))
        until = ended or (now if state == "running" else None)
        duration = None if started is None or until is None else max(0.0, (until - started).total_seconds())
        out.append(
            StageRow(
                name=name,
                state=state,
                started_at=started,
                ended_at=ended,
                duration_s=duration,
                calls=_int(e.get("calls")),
                polls=_int(e.get("status_calls")),
                job_id=_str(e.get("job_id")) or None,
                progress=_str(e.get("progress")),
                waiting_until=_when(e.get("waiting_until")),
                reason=_str(e.get("reason")),
                in_doubt=bool(e.get("in_doubt")),
            )
        )
        previous_end = ended or previous_end
    return out


async def _error(store: Store, run: Value) -> VendorError | None:
    """The failed stage's code and message (the ledger's), its request id from the stage entry or
    else from the claim's refusal (which keeps the vendor's request id)."""
    failed = [(s, e) for s, e in _ordered_stages(run) if e.get("state") == "failed" and e.get("code")]
    stage: str | None
    if failed:
        stage, entry = failed[-1]
        code, message, request_id = str(entry["code"]), str(entry.get("message", "")), entry.get("request_id")
    elif run.get("state") == RunState.FAILED and run.get("code"):
        stage, code, message = (
            _str(run.get("failed_stage")) or None,
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
    return VendorError(stage=stage, code=code, message=message, request_id=_str(request_id))


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
    doc, entry = await _waves_entry(store, run)
    state = None if entry is None else entry.get("approval")
    approval = None if state is None else _approval(state, now)
    control = await control_state(store.kv)
    facts = {k: run.get(k) for k in ("target", "kind", "window", "wave")}
    pause = paused_by(control, facts) if run.get("state") not in TERMINAL else None
    target_paused = str(run.get("target", "")) in control["pauses"]
    halt: Value | None = (doc or {}).get("halted")
    halted_by_it = halt is not None and halt.get("target") == run.get("target")
    cancel = run.get("cancel_requested")
    audit = await store.audit.entries(run=run_id)
    return RunDetail(
        run=_row(run),
        stages=_timeline(run, now),
        error=await _error(store, run),
        approval=approval,
        audit=[AuditEntry.model_validate({**a, "id": str(a.get("id"))}) for a in audit],
        actions=_actions(run, approval, str(run.get("target")) if target_paused else pause, halted_by_it),
        paused_by=pause,
        halted=_str(halt.get("reason")) if halt else None,
        cancel_requested=_str(cancel.get("cancelled_by")) if isinstance(cancel, dict) else None,
        reason=_str(run.get("reason") or run.get("message")),
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


# --- fleet ------------------------------------------------------------------------------------


def _occurrence(name: str, occ: OpenWindow, now: datetime) -> Occurrence:
    return Occurrence(
        window=name,
        opens_at=occ.opens_at,
        closes_at=occ.closes_at,
        cutoff_at=occ.cutoff_at,
        open_now=occ.opens_at <= now < occ.closes_at,
    )


def _freezes(fleet: Fleet, control: Mapping[str, Any], start: datetime, end: datetime) -> list[ActiveFreeze]:
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


def _covers(f: ActiveFreeze, t: Target) -> bool:
    return covers(f.scope, target=t.name, kind=t.kind, window=t.window, wave=t.wave)


async def fleet_view(store: Store, fleet: Fleet, now: datetime) -> FleetView:
    """Every target of the fleet, in fleet order (see the module docstring)."""
    runs = await store.ledger.runs()
    last: dict[str, Value] = {}
    for run in runs:  # oldest first: the last one seen is the newest
        last[str(run.get("target"))] = run
    control = await control_state(store.kv)
    freezes = _freezes(fleet, control, now, now + FREEZE_HORIZON)
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
                freezes=[_freeze_row(f, now) for f in freezes if _covers(f, t)],
                paused_by=paused_by(control, facts),
                last_run=None
                if r is None
                else LastRun(
                    id=str(r.get("id")), state=_state(r.get("state")), to_version=_str(r.get("to_version"))
                ),
            )
        )
    return FleetView(at=now, targets=rows)


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
    freezes = _freezes(fleet, control, start, end)
    by_window: dict[str, list[Target]] = {name: [] for name in fleet.windows}
    for t in fleet.targets:
        if t.window is not None:
            by_window[t.window].append(t)

    def covering(targets: Sequence[Target], name: str) -> list[ActiveFreeze]:
        return [
            f
            for f in freezes
            if any(_covers(f, t) for t in targets)
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
        targets = [t.name for t in fleet.targets if _covers(f, t)]
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
            a = _approval(state, now)
            items.append(
                ApprovalRow(
                    run=rid,
                    target=str(entry.get("target")),
                    kind=_str(entry.get("kind")),
                    from_version=_str(entry.get("from_version")),
                    to_version=str(entry.get("to_version")),
                    window=None if key == window_key(None) else key,
                    wave=_int(entry.get("wave")),
                    need=a.need,
                    granted=a.granted,
                    approvers=a.approvers,
                    expires_at=a.expires_at,
                    occurrence=a.occurrence,
                    expired=a.expired,
                    requested_by=a.requested_by,
                    planned_at=_when(entry.get("planned_at")),
                )
            )
    far = datetime.max.replace(tzinfo=UTC)
    items.sort(key=lambda i: (i.expires_at or far, i.run))
    return ApprovalsView(at=now, items=items)
