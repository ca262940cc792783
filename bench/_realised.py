"""What a benchmarked rollout should have taken, from the durations its jobs really had.

Pure functions over plain values, shared by ``python -m bench.rollout`` and its smoke test:

* :func:`bound_seconds` — the critical-path lower bound in domain seconds. Each target's time is
  the sum of the realised durations of the jobs the simulator ran for it (``JobDurations.drawn``)
  plus ``per_target_s`` (API latency it cannot avoid). Wave 0 (the canaries) takes its longest
  target; then the bake; then wave 1 takes at least max(its longest target, its total work /
  the window's concurrency) — the list-scheduling lower bound. No scheduler can beat it.
* :func:`notice_delays` — per followed job, domain seconds between the job's end at the vendor
  (the simulator's truth) and the ``ended_at`` its stage got in the ledger (when ``track_job``
  noticed), with the job's own length (the goal is relative to it).
* :func:`notice_ratios` — each notice delay over its goal, max(5 s, 10 % of the job): the goal
  (issue 13: p95 ≤ max(5 s, 10 % of the job)) is met when their p95 is ≤ 1. A p95 of the delays
  in seconds mixes 2-minute pre-checks with 40-minute upgrades and says nothing of the goal.
* :func:`status_calls_per_job` and :func:`pct` — the ledger's per-stage status calls, a percentile.

Checked against the simulator's truth: a stage's ``ended_at`` is when the look that saw the job
done got its answer (pipeline clock, ``offset_s`` adds back the simulator's); NAVER and OCP
stages, matched by start instant, have one drawn job per target, started within a fraction of a
real second of the stage's ``started_at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.engine.polling import quantile

__all__ = [
    "GOAL_FLOOR_S",
    "GOAL_SHARE",
    "bound_seconds",
    "notice_delays",
    "notice_ratios",
    "pct",
    "status_calls_per_job",
    "target_seconds",
]

#: The notice goal: within max(GOAL_FLOOR_S, GOAL_SHARE × the job's length).
GOAL_FLOOR_S, GOAL_SHARE = 5.0, 0.1
#: JobDurations.drawn: job id -> (target id, simulated start, seconds)
Drawn = Mapping[str, tuple[str, float, float]]


def target_seconds(drawn: Drawn) -> dict[str, float]:
    """target id -> the sum of its jobs' realised durations."""
    out: dict[str, float] = {}
    for target, _, seconds in drawn.values():
        out[target] = out.get(target, 0.0) + seconds
    return out


def bound_seconds(
    waves: Sequence[Sequence[str]],
    work: Mapping[str, float],
    *,
    concurrency: int,
    bake_s: float,
    per_target_s: float = 0.0,
) -> float:
    """The critical-path bound (domain s) of ``waves`` (lists of target ids, run one after the other
    with ``bake_s`` between), each target taking ``work[id] + per_target_s``."""
    total = 0.0
    for i, wave in enumerate(w for w in waves if w):
        d = [work.get(t, 0.0) + per_target_s for t in wave]
        total += (bake_s if i else 0.0) + max(max(d), sum(d) / concurrency)
    return total


def notice_delays(
    runs: Iterable[Mapping[str, Any]],
    drawn: Drawn,
    *,
    target_ids: Mapping[str, str] | None = None,
    offset_s: float = 0.0,
) -> list[tuple[float, float]]:
    """(delay, job seconds) of every succeeded stage that ``track_job`` followed (it has a
    ``job_id`` and status calls) and whose job the simulator drew a duration for. A stage's ``job_id`` is the simulator's job id where the vendor names jobs so
    (CCE, Autopilot, TaurusDB); where it does not (NAVER follows the cluster, OCP its task id
    under another name) the stage is matched to its target's drawn job (``target_ids``: target
    name -> simulator id) that started closest before the stage's ``started_at``. ``offset_s``:
    simulator clock minus the pipeline's clock (domain s), added back."""
    by_target: dict[str, list[tuple[float, float]]] = {}
    for target, started, seconds in drawn.values():
        by_target.setdefault(target, []).append((started, seconds))
    out = []
    for run in runs:
        mine = by_target.get((target_ids or {}).get(str(run.get("target")), ""), [])
        for stage in run.get("stages", {}).values():
            followed = stage.get("job_id") and stage.get("status_calls")  # track_job looked at it
            if not followed or stage.get("state") != "succeeded" or not stage.get("ended_at"):
                continue
            rec = drawn.get(str(stage["job_id"]))
            if rec is not None:
                started, seconds = rec[1], rec[2]
            elif mine and stage.get("started_at"):
                at = datetime.fromisoformat(stage["started_at"]).timestamp() + offset_s
                started, seconds = min(mine, key=lambda job: abs(job[0] - at))
            else:
                continue
            ended = datetime.fromisoformat(stage["ended_at"]).timestamp()
            out.append((ended - (started + seconds) + offset_s, seconds))
    return out


def notice_ratios(notices: Iterable[tuple[float, float]]) -> list[float]:
    """Each (delay, job seconds) of :func:`notice_delays` as delay / max(5 s, 10 % of the job):
    above 1 is a late notice."""
    return [delay / max(GOAL_FLOOR_S, GOAL_SHARE * seconds) for delay, seconds in notices]


def status_calls_per_job(runs: Iterable[Mapping[str, Any]]) -> list[int]:
    """Status calls of every succeeded stage that had a vendor job to follow."""
    out = []
    for run in runs:
        for stage in run.get("stages", {}).values():
            if stage.get("job_id") and stage.get("state") == "succeeded" and stage.get("status_calls"):
                out.append(int(stage["status_calls"]))
    return out


def pct(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1, nearest rank) of ``values``; None when empty."""
    return quantile(values, q) if values else None
