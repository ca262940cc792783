"""The waves document of one window: its active runs, its halt, when each wave last finished.

One document per window (bucket ``waves``, key = window name, ``_anytime`` for targets without
one) holds what ``start_upgrades`` must decide atomically: how many runs are running (the
window's concurrency), which wave is due, whether the window is halted. Every change is a pure
function ``doc -> doc`` applied with the ledger's compare-and-set ``mutate``, so two deliveries
can never both release the same run or exceed the concurrency.

```
{"window": "sat-night",
 "runs": {runid: {"target", "kind", "wave", "from_version", "to_version", "planned_at",
                  "state": "planned" | "running", "released_at", "released_by"}},
 "last_ended": {"0": iso, ...},            # per wave: when its last run finished
 "halted": null | {"wave", "target", "runid", "reason", "at", "by"},
 "resumed": [{"by", "at", "halted"}]}     # who lifted a halt (the last few)
```

A run that needs approval carries ``approval`` (:mod:`shared.domain.approvals`): :func:`select`
releases it only once approved, within its request's occurrence; :func:`rebind` binds the
lapsed requests to the window's new opening.

Only active runs are kept (planned, running); finished ones leave. Resuming a halted window is
setting ``halted`` to null: failed runs are gone from ``runs`` so they block nothing after that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain.approvals import bind, waiting_reason
from shared.domain.versions import BadVersion, compare

__all__ = [
    "ANYTIME",
    "BUCKET",
    "Selection",
    "add_planned",
    "finish",
    "new_doc",
    "rebind",
    "remove",
    "resume",
    "select",
    "set_entry",
    "window_key",
]

BUCKET = "waves"
#: The waves document of targets without a window.
ANYTIME = "_anytime"

Doc = dict[str, Any]


def window_key(window: str | None) -> str:
    return window or ANYTIME


def new_doc(key: str) -> Doc:
    return {"window": key, "runs": {}, "last_ended": {}, "halted": None}


def _copy(doc: Doc | None, key: str) -> Doc:
    base = doc or new_doc(key)
    return {
        **base,
        "runs": {k: dict(v) for k, v in base.get("runs", {}).items()},
        "last_ended": dict(base.get("last_ended", {})),
    }


def add_planned(
    doc: Doc | None, key: str, runs: dict[str, dict[str, Any]]
) -> tuple[Doc, dict[str, str], dict[str, str]]:
    """Add planned runs, latest version wins per target.

    Returns the new doc, the runs refused (runid → reason: a planned or running run of that
    target already goes as far or further) and the planned runs this superseded (older
    versions not started yet; old runid → the runid that replaces it). A run already present is accepted again (replays are no-ops).
    """
    doc = _copy(doc, key)
    lost: dict[str, str] = {}
    superseded: dict[str, str] = {}
    for rid, run in runs.items():
        if rid in doc["runs"]:
            continue
        same = {o: e for o, e in doc["runs"].items() if e["target"] == run["target"]}
        ahead = [e for e in same.values() if _cmp(run["kind"], e["to_version"], run["to_version"]) >= 0]
        if ahead:
            lost[rid] = f"a {ahead[0]['state']} run to {ahead[0]['to_version']} goes as far"
            continue
        for other, e in same.items():
            if e["state"] == "planned":
                del doc["runs"][other]
                superseded[other] = rid
        doc["runs"][rid] = {**run, "state": "planned"}
    return doc, lost, superseded


def _cmp(kind: str, a: str, b: str) -> int:
    try:
        return compare(kind, a, b)
    except BadVersion:
        return 0 if a == b else -1


def finish(
    doc: Doc | None, key: str, runid: str, *, ok: bool, now: datetime, by: str, reason: str = ""
) -> Doc:
    """A run ended: it leaves the document; its wave's ``last_ended`` moves; a failure halts the window.

    Only the first failure halts (``halted.by`` is the event that did, so its redelivery can
    re-emit the same ``upgrade.halted`` and a second failure emits none).
    """
    doc = _copy(doc, key)
    run = doc["runs"].pop(runid, None)
    if run is None:
        return doc
    wave = str(run["wave"])
    prev = doc["last_ended"].get(wave)
    if prev is None or prev < now.isoformat():
        doc["last_ended"][wave] = now.isoformat()
    if not ok and doc.get("halted") is None:
        doc["halted"] = {
            "wave": run["wave"],
            "target": run["target"],
            "runid": runid,
            "reason": reason,
            "at": now.isoformat(),
            "by": by,
        }
    return doc


@dataclass
class Selection:
    """What :func:`select` decided besides the new document (for logs and follow-up events)."""

    wave: int | None = None
    #: the due wave's bake ends then: look again at that instant
    bake_until: datetime | None = None
    #: runid → why it was not released (window closed, does not fit, target busy)
    waiting: dict[str, str] = field(default_factory=dict)
    #: the earliest instant a waiting run could fit (next window), if known
    retry_at: datetime | None = None


def select(
    doc: Doc | None,
    key: str,
    *,
    now: datetime,
    concurrency: int,
    bake: timedelta,
    fits: Callable[[dict[str, Any]], Any],
    by: str,
) -> tuple[Doc, Selection]:
    """Release what may start now: lowest planned wave, once every earlier wave is done and baked.

    ``fits(run)`` is the window gate (``ok``, ``reason``, ``retry_at``). Released runs become
    ``running`` with ``released_by = by``. Nothing is released while the window is halted.
    """
    doc = _copy(doc, key)
    sel = Selection()
    runs = doc["runs"]
    planned = {rid: r for rid, r in runs.items() if r["state"] == "planned"}
    running = [r for r in runs.values() if r["state"] == "running"]
    if doc.get("halted") is not None or not planned:
        return doc, sel
    wave = min(r["wave"] for r in planned.values())
    sel.wave = wave
    if any(r["wave"] < wave for r in running):
        return doc, sel
    ended = [datetime.fromisoformat(t) for w, t in doc["last_ended"].items() if int(w) < wave]
    if ended and now < max(ended) + bake:
        sel.bake_until = max(ended) + bake
        return doc, sel
    busy = {r["target"] for r in running}
    slots = concurrency - len(running)
    for rid, run in sorted(
        planned.items(), key=lambda kv: (kv[1]["wave"], kv[1].get("planned_at", ""), kv[1]["target"])
    ):
        if run["wave"] != wave:
            continue
        if slots <= 0:
            sel.waiting[rid] = f"concurrency {concurrency} reached"
            continue
        if run["target"] in busy:
            sel.waiting[rid] = "another run of this target is running"
            continue
        if run.get("not_before") and now.isoformat() < run["not_before"]:
            sel.waiting[rid] = f"asked for the next window (from {run['not_before']})"
            continue
        why = waiting_reason(run.get("approval"), now)
        if why is not None:
            sel.waiting[rid] = why
            continue
        g = fits(run)
        if not g.ok:
            sel.waiting[rid] = g.reason
            if g.retry_at is not None and (sel.retry_at is None or g.retry_at < sel.retry_at):
                sel.retry_at = g.retry_at
            continue
        runs[rid] = {**run, "state": "running", "released_at": now.isoformat(), "released_by": by}
        busy.add(run["target"])
        slots -= 1
    return doc, sel


def remove(doc: Doc | None, key: str, runid: str) -> Doc:
    """A run that never ran (cancelled, denied) leaves: no wave moves, nothing halts."""
    doc = _copy(doc, key)
    doc["runs"].pop(runid, None)
    return doc


def set_entry(doc: Doc | None, key: str, runid: str, entry: dict[str, Any]) -> Doc:
    """The run's entry replaced (its approval state changed)."""
    doc = _copy(doc, key)
    doc["runs"][runid] = entry
    return doc


def rebind(
    doc: Doc | None, key: str, *, now: datetime, opens_at: datetime, closes_at: datetime
) -> tuple[Doc, list[str]]:
    """At a window's opening: every planned run whose approval request lapsed (its occurrence
    closed, or it expired) is bound to this occurrence, nothing granted; the runs rebound (each
    needs a new request). A request already bound to this occurrence is kept (a replay rebinds
    nothing)."""
    doc = _copy(doc, key)
    out: list[str] = []
    for rid, run in doc["runs"].items():
        state = run.get("approval")
        if state is None or run["state"] != "planned" or state.get("occurrence") == opens_at.isoformat():
            continue
        if now < datetime.fromisoformat(state["expires_at"]):
            continue
        run["approval"] = bind(state, now=now, opens_at=opens_at, closes_at=closes_at)
        out.append(rid)
    return doc, out


def resume(
    doc: Doc | None, key: str, *, covered: Callable[[dict[str, Any]], bool], by: str, now: datetime
) -> Doc:
    """Lift the window's halt when ``covered`` takes in the halted run (``halted`` holds its
    target and wave); who lifted it is kept in ``resumed`` (the last 20)."""
    doc = _copy(doc, key)
    halted = doc.get("halted")
    if halted is None or not covered(halted):
        return doc
    doc["halted"] = None
    doc["resumed"] = [*doc.get("resumed", []), {"by": by, "at": now.isoformat(), "halted": halted}][-20:]
    return doc
