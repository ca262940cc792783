"""The view models: what each page and API route answers (the OpenAPI document is generated from them), and the views' limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from shared.store.ledger import RunState

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
    #: the vendor's own answer (``upshift inventory``'s look), only when asked for (``live``)
    vendor_version: str | None = None
    vendor_state: str | None = None
    #: versions the vendor says it may move to (None: the vendor does not say)
    vendor_may_move_to: list[str] | None = None
    #: the look failed: the vendor's code and words
    vendor_error: str | None = None
    #: the vendor runs another version than the ledger / fleet file says
    drift: bool = False
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
