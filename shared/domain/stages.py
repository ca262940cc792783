"""The stages of an upgrade, per kind, following each vendor's own flow (DESIGN §4).

* ncloud-kafka: precheck → upgrade (rolling) → verify
* cce:          precheck → upgrade → postcheck
* autopilot:    workflow → precheck → snapshot → upgrade → postcheck
* starrocks:    upgrade (→ job)
* oceanbase:    upgrade (→ task DAG)

Also: which stages start an *upgrade* (the calls that must never happen twice), run ids, and
the expected duration of a stage (ledger history first, then the fleet's ``durations``, then
the defaults below) that window planning and polling both use.
"""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import TYPE_CHECKING

from events.envelope import consequence_id

if TYPE_CHECKING:
    from shared.domain.fleet import Fleet

__all__ = [
    "DEFAULT_DURATIONS",
    "STAGES",
    "UPGRADE_STAGES",
    "expected_duration",
    "first_stage",
    "next_stage",
    "run_id",
]

STAGES: dict[str, tuple[str, ...]] = {
    "ncloud-kafka": ("precheck", "upgrade", "verify"),
    "cce": ("precheck", "upgrade", "postcheck"),
    "autopilot": ("workflow", "precheck", "snapshot", "upgrade", "postcheck"),
    "starrocks": ("upgrade",),
    "oceanbase": ("upgrade",),
}

#: Stages whose call changes the target's version: claimed, recorded, reconciled (DESIGN §6.2).
UPGRADE_STAGES = frozenset({"upgrade"})

DEFAULT_DURATIONS: dict[str, dict[str, timedelta]] = {
    "ncloud-kafka": {
        "precheck": timedelta(seconds=30),
        "upgrade": timedelta(minutes=30),
        "verify": timedelta(seconds=30),
    },
    "cce": {
        "precheck": timedelta(minutes=2),
        "upgrade": timedelta(minutes=40),
        "postcheck": timedelta(minutes=2),
    },
    "autopilot": {
        "workflow": timedelta(seconds=10),
        "precheck": timedelta(minutes=2),
        "snapshot": timedelta(minutes=5),
        "upgrade": timedelta(minutes=40),
        "postcheck": timedelta(minutes=2),
    },
    "starrocks": {"upgrade": timedelta(minutes=20)},
    "oceanbase": {"upgrade": timedelta(minutes=60)},
}


def first_stage(kind: str) -> str:
    return STAGES[kind][0]


def next_stage(kind: str, stage: str) -> str | None:
    """The stage after ``stage``, or None when ``stage`` was the last."""
    flow = STAGES[kind]
    i = flow.index(stage)
    return flow[i + 1] if i + 1 < len(flow) else None


def run_id(target: str, to_version: str) -> str:
    """One run per (target, version): replanning the same upgrade lands on the same run."""
    return "r" + consequence_id("run", target, to_version)[:15]


def expected_duration(
    kind: str, stage: str, *, history: list[float] | None = None, fleet: Fleet | None = None
) -> timedelta:
    """Median of past durations (seconds) if any, else the fleet's setting, else the default."""
    if history:
        return timedelta(seconds=statistics.median(history))
    # the fleet's durations are keyed by Kind; ``kind`` is any text (an unknown one has none)
    for of_kind, by_stage in (fleet.durations if fleet is not None else {}).items():
        configured = by_stage.get(stage) if of_kind == kind else None
        if configured is not None:
            return configured
    return DEFAULT_DURATIONS[kind][stage]
