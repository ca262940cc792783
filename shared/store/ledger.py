"""The ledger: runs, their stages, and each target's current version.

Documents live in KV buckets (``runs``, ``versions``) and are changed with a read–modify–CAS
loop, so concurrent writers on different machines never lose each other's updates. Inside a
handler delivered by the SQLite bus on the store's own file, the change is instead applied in
the handler's outbox transaction (``outbox=True``; every ledger write): the run's state commits
with the events that announce it. Elsewhere the replay rule (``shared/runtime/function.py``) covers it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from shared.errors import Conflict
from shared.store.base import KV, Entry, Value

__all__ = [
    "DROPPED",
    "PENDING",
    "RUNS",
    "TERMINAL",
    "VERSIONS",
    "Ledger",
    "RunState",
    "backoff",
    "mutate",
    "settled",
    "write_over",
]


async def backoff(attempt: int) -> None:
    """A random pause before compare-and-set attempt ``attempt`` + 1: none before the first,
    up to 50 ms once many writers collide (workers that lost spread out instead of colliding
    again on the next read)."""
    if attempt:
        await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))


class RunState(StrEnum):
    """A run's lifecycle. ``planned`` (or ``awaiting_approval``, until people approve it) →
    ``running`` → ``succeeded`` | ``failed`` | ``cancelled`` (advance writes these for a run that
    started, and nothing else writes a started run's outcome); ``superseded`` (a newer release
    planned the target first), ``denied`` (its approval was denied) and ``cancelled`` also end runs
    that never started; ``halted`` is kept for runs stopped with their wave."""

    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    DENIED = "denied"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    HALTED = "halted"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


#: A run in one of these states takes no further stage.
TERMINAL = frozenset(
    {
        RunState.SUCCEEDED,
        RunState.FAILED,
        RunState.HALTED,
        RunState.SUPERSEDED,
        RunState.CANCELLED,
        RunState.DENIED,
    }
)
#: Runs that ended without ever starting: never started, never announced again.
DROPPED = frozenset({RunState.SUPERSEDED, RunState.CANCELLED, RunState.DENIED})
#: Runs not started yet: planned, with or without an approval to wait for.
PENDING = frozenset({RunState.PLANNED, RunState.AWAITING_APPROVAL})

RUNS = "runs"
VERSIONS = "versions"
DURATIONS = "durations"
#: How many past durations per (kind, stage) are kept for the expected duration and the first
#: status look. At least a wide window's concurrency: when a wave starts 100 jobs at once, the
#: last 20 to finish are always the longest of them, and a 20-sample history then forgot every
#: short job, so the first look (its low quantile) crept later and missed them.
HISTORY = 200


async def mutate(
    kv: KV,
    bucket: str,
    key: str,
    change: Callable[[Value | None], Value],
    *,
    tries: int = 50,
    outbox: bool = False,
) -> Value:
    """Apply ``change`` to the current value (None when absent) with compare-and-set, retrying on
    Conflict. ``outbox``: with the running handler's outbox where the backend can (SQLite, same
    file); the value returned is then ``change`` of the value read now."""
    if outbox:
        defer = getattr(kv, "defer", None)
        if defer is not None:
            guess: Value | None = await defer(bucket, key, change)
            if guess is not None:
                return guess
    for attempt in range(tries):
        await backoff(attempt)
        entry = await kv.get(bucket, key)
        new = change(None if entry is None else dict(entry.value))
        try:
            await write_over(kv, bucket, key, entry, new)
            return new
        except Conflict:
            continue
    raise Conflict(f"{bucket}/{key}: gave up after {tries} concurrent updates")


async def write_over(kv: KV, bucket: str, key: str, read: Entry | None, value: Value) -> None:
    """Write ``value`` where ``read`` was read (absent: None); Conflict if it changed since."""
    if read is None:
        await kv.create(bucket, key, value)
    else:
        await kv.update(bucket, key, value, read.revision)


def settled(entry: Value, job_id: str) -> bool:
    """Whether a run's stage ``entry`` holds an outcome for job ``job_id`` (:meth:`Ledger.settle_stage`)."""
    return entry.get("state") in ("succeeded", "failed") and entry.get("job_id") in (None, job_id)


def _noted(
    cur: Value | None,
    run_id: str,
    stage: str,
    fields: Value,
    *,
    calls: int,
    status_calls: int,
    upgrade: bool,
) -> Value:
    """The run ``cur`` with ``fields`` merged into its ``stage`` entry and the calls counted."""
    base = cur or {"id": run_id, "stages": {}, "created_at": time.time()}
    stages = dict(base.get("stages", {}))
    entry = {**stages.get(stage, {}), **fields}
    if calls:
        entry["calls"] = entry.get("calls", 0) + calls
    if status_calls:
        entry["status_calls"] = entry.get("status_calls", 0) + status_calls
    stages[stage] = entry
    out = {**base, "stages": stages, "updated_at": time.time()}
    if calls and upgrade:
        out["upgrade_calls"] = out.get("upgrade_calls", 0) + calls
    if status_calls:
        out["status_calls"] = out.get("status_calls", 0) + status_calls
    return out


class Ledger:
    """The runs, versions and durations buckets. Every change to a run goes through one of these
    methods — the lifecycle transitions (``open_run`` → ``start_run`` → ``end_run``, or
    ``supersede_run``) and ``note_stage`` for what a stage learnt — and nothing outside
    ``shared/store`` writes the runs bucket."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv

    async def open_run(self, run_id: str, **fields: Any) -> Value:
        """Create the run if new. Idempotent: a run that exists keeps its state and its fields, and
        gains those it lacks (a run released while it was being planned got only its state)."""

        def change(cur: Value | None) -> Value:
            if cur is not None:
                missing = {k: v for k, v in fields.items() if k != "state" and k not in cur}
                return {**cur, **missing} if missing else cur
            now = time.time()
            return {
                "id": run_id,
                "state": RunState.PLANNED,
                "stages": {},
                "created_at": now,
                "updated_at": now,
                **fields,
            }

        return await mutate(self.kv, RUNS, run_id, change, outbox=True)

    async def start_run(self, run_id: str, **fields: Any) -> Value:
        """``planned`` (or unknown) → ``running``; a run already further along is left as it is.
        ``fields`` fill in what the run lacks (they never overwrite what it holds)."""

        def change(cur: Value | None) -> Value:
            base = cur or {"id": run_id, "stages": {}, "created_at": time.time()}
            if base.get("state") is not None and base.get("state") not in PENDING:
                return base
            return {**fields, **base, "state": RunState.RUNNING, "updated_at": time.time()}

        return await mutate(self.kv, RUNS, run_id, change, outbox=True)

    async def supersede_run(self, run_id: str, by: str) -> Value:
        """``planned`` → ``superseded`` by run ``by``; a run that started meanwhile is left alone."""

        def change(cur: Value | None) -> Value:
            if cur is None:
                return {"id": run_id, "state": RunState.SUPERSEDED, "stages": {}, "superseded_by": by}
            if cur.get("state") not in PENDING:
                return cur
            return {**cur, "state": RunState.SUPERSEDED, "superseded_by": by, "updated_at": time.time()}

        return await mutate(self.kv, RUNS, run_id, change, outbox=True)

    async def approve_run(self, run_id: str, approved_by: list[str]) -> Value:
        """Record who approved; an ``awaiting_approval`` run becomes ``planned`` (approved, waiting
        for its window). A run that started or ended meanwhile keeps its state."""

        def change(cur: Value | None) -> Value:
            base = cur or {"id": run_id, "stages": {}, "created_at": time.time()}
            out = {**base, "approved_by": list(approved_by), "updated_at": time.time()}
            if base.get("state") == RunState.AWAITING_APPROVAL:
                out["state"] = RunState.PLANNED
            return out

        return await mutate(self.kv, RUNS, run_id, change, outbox=True)

    async def end_run(self, run_id: str, state: RunState, **fields: Any) -> Value:
        """A started run's outcome (``succeeded``/``failed``/``cancelled``, with ``ended_at`` and the
        failure's words or who cancelled)."""
        if state not in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED):
            raise ValueError(f"end_run takes succeeded, failed or cancelled, not {state}")
        return await self.update_run(run_id, state=state, **fields)

    async def drop_run(self, run_id: str, state: RunState, **fields: Any) -> Value:
        """A run that has not started ends ``cancelled`` or ``denied`` (with who and why). A run that
        started meanwhile is not ended: it gets ``cancel_requested`` (``fields``) instead, which its
        next stage honours when the upgrade stage has not begun (:mod:`shared.engine.stage`)."""
        if state not in (RunState.CANCELLED, RunState.DENIED):
            raise ValueError(f"drop_run takes cancelled or denied, not {state}")

        def change(cur: Value | None) -> Value:
            base = cur or {"id": run_id, "stages": {}, "created_at": time.time()}
            if base.get("state") is None or base.get("state") in PENDING:
                return {**base, **fields, "state": state, "updated_at": time.time()}
            if base.get("state") == RunState.RUNNING and state == RunState.CANCELLED:
                return {**base, "cancel_requested": fields, "updated_at": time.time()}
            return base

        return await mutate(self.kv, RUNS, run_id, change, outbox=True)

    async def update_run(self, run_id: str, **fields: Any) -> Value:
        def change(cur: Value | None) -> Value:
            base = cur or {"id": run_id, "stages": {}, "created_at": time.time()}
            return {**base, **fields, "updated_at": time.time()}

        return await mutate(self.kv, RUNS, run_id, change, outbox=True)

    async def record_stage(self, run_id: str, stage: str, **fields: Any) -> Value:
        """Merge ``fields`` into the run's entry for ``stage``."""

        def change(cur: Value | None) -> Value:
            base = cur or {"id": run_id, "stages": {}, "created_at": time.time()}
            stages = dict(base.get("stages", {}))
            stages[stage] = {**stages.get(stage, {}), **fields, "updated_at": time.time()}
            return {**base, "stages": stages, "updated_at": time.time()}

        return await mutate(self.kv, RUNS, run_id, change, outbox=True)

    async def note_stage(
        self,
        run_id: str,
        stage: str,
        *,
        calls: int = 0,
        status_calls: int = 0,
        upgrade: bool = False,
        **fields: Any,
    ) -> Value:
        """What a stage function or ``track_job`` learnt: merge ``fields`` into the run's entry
        for ``stage`` and count the vendor calls made — ``calls`` (of the stage, and of the run's
        ``upgrade_calls`` when ``upgrade``) and ``status_calls`` (of the stage and the run) — in
        one compare-and-set. The run's own state is not touched."""

        def change(cur: Value | None) -> Value:
            return _noted(cur, run_id, stage, fields, calls=calls, status_calls=status_calls, upgrade=upgrade)

        return await mutate(self.kv, RUNS, run_id, change, outbox=True)

    async def settle_stage(
        self, run_id: str, stage: str, job_id: str, *, status_calls: int = 0, **verdict: Any
    ) -> Value:
        """Record ``verdict`` (``state`` succeeded or failed, with ``ended_at``, ``code``,
        ``message`` …) as the stage's outcome on job ``job_id`` — unless the stage holds one for
        that job already: the first stands. Two looks at one job (a redelivery beside the
        original, or after it) can read different answers, and each would emit its own outcome.
        ``status_calls`` count either way. Returns the stage's entry as stored."""

        def change(cur: Value | None) -> Value:
            entry = ((cur or {}).get("stages") or {}).get(stage, {})
            fields = {} if settled(entry, job_id) else {**verdict, "job_id": job_id}
            return _noted(cur, run_id, stage, fields, calls=0, status_calls=status_calls, upgrade=False)

        run = await mutate(self.kv, RUNS, run_id, change, outbox=True)
        return dict(run["stages"][stage])

    async def run(self, run_id: str) -> Value | None:
        e = await self.kv.get(RUNS, run_id)
        return None if e is None else e.value

    async def runs(self) -> list[Value]:
        out = []
        for key in await self.kv.keys(RUNS):
            e = await self.kv.get(RUNS, key)
            if e is not None:
                out.append(e.value)
        return sorted(out, key=lambda r: r.get("created_at", 0))

    async def set_version(self, target: str, version: str) -> None:
        def change(_cur: Value | None) -> Value:
            return {"version": version, "at": time.time()}

        await mutate(self.kv, VERSIONS, target, change, outbox=True)

    async def version(self, target: str) -> str | None:
        e = await self.kv.get(VERSIONS, target)
        return None if e is None else e.value["version"]

    async def add_duration(self, kind: str, stage: str, seconds: float) -> None:
        """Remember how long a (kind, stage) took, keeping the last ``HISTORY`` samples."""

        def change(cur: Value | None) -> Value:
            samples = list((cur or {}).get("seconds", []))
            samples.append(round(seconds, 3))
            return {"seconds": samples[-HISTORY:]}

        await mutate(self.kv, DURATIONS, f"{kind}/{stage}", change, outbox=True)

    async def durations(self, kind: str, stage: str) -> list[float]:
        e = await self.kv.get(DURATIONS, f"{kind}/{stage}")
        return [] if e is None else list(e.value["seconds"])
