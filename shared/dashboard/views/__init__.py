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

Package layout: :mod:`.models` (the pydantic views), :mod:`.query` (query parsing), :mod:`.reading`
(stored documents → plain values), and one module per page: :mod:`.runs`, :mod:`.fleet`,
:mod:`.calendar`, :mod:`.approvals`.
"""

from __future__ import annotations

from shared.dashboard.views.approvals import approvals_view
from shared.dashboard.views.calendar import calendar_view
from shared.dashboard.views.fleet import fleet_view
from shared.dashboard.views.models import (
    ACTIONS,
    DEFAULT_DAYS,
    DEFAULT_PER_PAGE,
    FREEZE_HORIZON,
    MAX_DAYS,
    MAX_PER_PAGE,
    Action,
    ApprovalRow,
    ApprovalState,
    ApprovalsView,
    AuditEntry,
    CalendarFreeze,
    CalendarOccurrence,
    CalendarView,
    CalendarWindow,
    FleetView,
    FreezeRow,
    GrantRow,
    Instant,
    LastRun,
    Occurrence,
    RunDetail,
    RunRow,
    RunsPage,
    StageRow,
    TargetRow,
    VendorError,
)
from shared.dashboard.views.query import BadQuery, calendar_query, runs_query
from shared.dashboard.views.runs import allowed_actions, run_view, runs_view

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
