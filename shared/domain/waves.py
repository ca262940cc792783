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
 "resumed": [{"by", "at", "halted"}],     # who lifted a halt (the last few)
 "queue": {"1": {"pages": [page key, ...], "taken": seq}},  # planned runs beyond the head
 "seq": int}                               # the last sequence number given to a paged run
```

The document stays small whatever the fleet's size: it holds the running runs and at most
:func:`head_room` planned ones; the rest wait, in order, in append-only pages of bucket
``wave-pages`` (:mod:`shared.domain.wave_pages`), drained into the document as its planned runs
run out. Every delivery reads and writes O(concurrency), not O(targets): at 10,000 targets one
document holding every planned run was 2 MB, past NATS's 1 MB message limit, and rewritten on
every delivery.

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
from shared.domain.fleet import Fleet
from shared.domain.versions import BadVersion, compare

__all__ = [
    "ANYTIME",
    "ANYTIME_CONCURRENCY",
    "BUCKET",
    "SWEEP",
    "Added",
    "Doc",
    "Selection",
    "add_planned",
    "concurrency",
    "copy_doc",
    "finish",
    "head_room",
    "new_doc",
    "pinned",
    "queued_waves",
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
#: Concurrency of targets without a window (a window's own is ``window.concurrency``).
ANYTIME_CONCURRENCY = 10
#: The fewest planned runs a document holds before spilling to pages (:func:`head_room`).
HEAD_MIN = 100
#: How often ``window_clock`` has an open window's document swept (domain time): the longest a
#: run whose outcome event was lost holds its slot.
SWEEP = timedelta(minutes=5)

Doc = dict[str, Any]


def window_key(window: str | None) -> str:
    return window or ANYTIME


def concurrency(fleet: Fleet, key: str) -> int:
    """How many runs of the waves document ``key`` may run at once."""
    return ANYTIME_CONCURRENCY if key == ANYTIME else fleet.windows[key].concurrency


def head_room(fleet: Fleet, key: str) -> int:
    """How many planned runs the document itself holds (the rest wait in its pages): enough
    to refill every slot twice over between two page reads."""
    return max(HEAD_MIN, 2 * concurrency(fleet, key))


def new_doc(key: str) -> Doc:
    return {"window": key, "runs": {}, "last_ended": {}, "halted": None, "queue": {}, "seq": 0}


def copy_doc(doc: Doc | None, key: str) -> Doc:
    base = doc or new_doc(key)
    return {
        **base,
        "runs": {k: dict(v) for k, v in base.get("runs", {}).items()},
        "last_ended": dict(base.get("last_ended", {})),
        "queue": {w: {**q, "pages": list(q.get("pages", []))} for w, q in base.get("queue", {}).items()},
    }


def pinned(entry: dict[str, Any]) -> bool:
    """A planned run that never goes to the pages: approvals and chat read and change it in the
    document (its approval request, its ``not_before``)."""
    return "approval" in entry or "not_before" in entry


def queued_waves(doc: Doc | None) -> set[int]:
    """The waves with runs still waiting in the document's pages."""
    return {int(w) for w, q in (doc or {}).get("queue", {}).items() if q.get("pages")}


def add_planned(
    doc: Doc | None,
    key: str,
    runs: dict[str, dict[str, Any]],
    *,
    queued: dict[str, dict[str, Any]] | None = None,
    head_max: int | None = None,
) -> Added:
    """Add planned runs, latest version wins per target.

    ``queued``: the planned entries the window's pages hold (:mod:`shared.domain.wave_pages`),
    by runid, so latest-wins sees every planned run of a target. ``head_max``: how many planned
    entries the document itself may hold; a run beyond it (or of a wave whose queue is not
    empty, so the order holds) is ``spilled`` to the pages — except a run with an approval
    request or a ``not_before``, which always stays in the document (approvals and chat read
    and change it there). A run already present, in the document or a page, is accepted again
    (replays are no-ops).
    """
    doc = copy_doc(doc, key)
    queued = queued or {}
    out = Added(doc)
    waiting = {w for w, q in doc.get("queue", {}).items() if q.get("pages")}
    in_head = sum(1 for e in doc["runs"].values() if e["state"] == "planned" and not pinned(e))
    # every planned or running run by target, wherever it waits: one pass, not one per new run
    where: dict[str, str] = {}  # runid -> "head" | "queued" | "spilled"
    by_target: dict[str, dict[str, dict[str, Any]]] = {}
    for place, entries in (("head", doc["runs"]), ("queued", queued)):
        for o, e in entries.items():
            where[o] = place
            by_target.setdefault(e["target"], {})[o] = e
    spilled: dict[str, dict[str, Any]] = {}
    for rid, run in runs.items():
        if rid in where:
            continue
        same = by_target.setdefault(run["target"], {})
        ahead = [e for e in same.values() if _cmp(run["kind"], e["to_version"], run["to_version"]) >= 0]
        if ahead:
            out.lost[rid] = f"a {ahead[0]['state']} run to {ahead[0]['to_version']} goes as far"
            continue
        for other, e in list(same.items()):
            if e["state"] != "planned":
                continue
            out.superseded[other] = rid
            del same[other]
            place = where.pop(other)
            if place == "head":
                in_head -= 0 if pinned(doc["runs"].pop(other)) else 1
            elif place == "queued":
                out.unqueued.add(other)
            else:
                del spilled[other]
        entry = {**run, "state": "planned"}
        same[rid] = entry
        if (
            not pinned(entry)
            and head_max is not None
            and (str(run["wave"]) in waiting or in_head >= head_max)
        ):
            spilled[rid] = entry
            where[rid] = "spilled"
            waiting.add(str(run["wave"]))
            continue
        doc["runs"][rid] = entry
        where[rid] = "head"
        in_head += 0 if pinned(entry) else 1
    out.spilled = list(spilled.items())
    return out


@dataclass
class Added:
    """What :func:`add_planned` decided: the new document, and what goes elsewhere."""

    doc: Doc
    #: runid → why it was refused (a planned or running run of that target goes as far or further)
    lost: dict[str, str] = field(default_factory=dict)
    #: older planned runs not started yet → the runid that replaces each
    superseded: dict[str, str] = field(default_factory=dict)
    #: superseded runs that sit in a page: to take out of it
    unqueued: set[str] = field(default_factory=set)
    #: accepted runs for the window's pages, in order: (runid, entry)
    spilled: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


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
    doc = copy_doc(doc, key)
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
    doc = copy_doc(doc, key)
    sel = Selection()
    runs = doc["runs"]
    planned = {rid: r for rid, r in runs.items() if r["state"] == "planned"}
    running = [r for r in runs.values() if r["state"] == "running"]
    # a wave still in the pages counts: a later wave never goes first because its runs were drained
    queued = queued_waves(doc)
    if doc.get("halted") is not None or not (planned or queued):
        return doc, sel
    wave = min([r["wave"] for r in planned.values()] + list(queued))
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
    doc = copy_doc(doc, key)
    doc["runs"].pop(runid, None)
    return doc


def set_entry(doc: Doc | None, key: str, runid: str, entry: dict[str, Any]) -> Doc:
    """The run's entry replaced (its approval state changed)."""
    doc = copy_doc(doc, key)
    doc["runs"][runid] = entry
    return doc


def rebind(
    doc: Doc | None, key: str, *, now: datetime, opens_at: datetime, closes_at: datetime
) -> tuple[Doc, list[str]]:
    """At a window's opening: every planned run whose approval request lapsed (its occurrence
    closed, or it expired) is bound to this occurrence, nothing granted; the runs rebound (each
    needs a new request). A request already bound to this occurrence is kept (a replay rebinds
    nothing)."""
    doc = copy_doc(doc, key)
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
    doc = copy_doc(doc, key)
    halted = doc.get("halted")
    if halted is None or not covered(halted):
        return doc
    doc["halted"] = None
    doc["resumed"] = [*doc.get("resumed", []), {"by": by, "at": now.isoformat(), "halted": halted}][-20:]
    return doc
