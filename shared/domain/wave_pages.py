"""The pages of a waves document: planned runs beyond what the document itself holds, in order.

A window of 10,000 targets plans 10,000 runs at once; :mod:`shared.domain.waves` keeps at most
:func:`~shared.domain.waves.head_room` planned runs in the document every delivery rewrites,
and the rest here, in bucket ``wave-pages``, one queue of pages per wave::

    {"window": "sat-night", "wave": 1, "runs": [[seq, runid, entry], ...]}   # ≤ PAGE_SIZE runs

Each paged run has a sequence number from the document's ``seq``; a wave's queue lists its pages
in order and ``taken`` is the last sequence number drained. Pages are written before the
document names them, under a key that includes a digest of what they hold, so a writer whose
compare-and-set lost leaves at most an unnamed page behind, never a page another writer names.
Draining is one compare-and-set of the document (moving the runs in and ``taken`` on), so a run
is drained once whichever worker does it; the page itself is only deleted once the document no
longer names it. The one change to a named page is taking out a superseded run (latest wins
across pages too); the sequence numbers of the others do not move, so ``taken`` stays right.
"""

from __future__ import annotations

import hashlib
from typing import Any

from shared.domain.waves import Doc, copy_doc, pinned

__all__ = [
    "PAGES",
    "PAGE_SIZE",
    "Page",
    "drain",
    "named_pages",
    "paginate",
    "queued_entries",
    "to_drain",
    "unqueue",
]

PAGES = "wave-pages"
#: Planned runs per page (~100 KB of JSON: well inside a NATS message).
PAGE_SIZE = 500

Page = dict[str, Any]


def _key(window: str, wave: int, runs: list[list[Any]]) -> str:
    digest = hashlib.sha256("\n".join(f"{s} {r}" for s, r, _ in runs).encode()).hexdigest()[:16]
    return f"{window}.{wave}.{runs[0][0]}.{digest}"


def paginate(doc: Doc, key: str, spilled: list[tuple[str, dict[str, Any]]]) -> tuple[Doc, dict[str, Page]]:
    """Number the spilled runs on from the document's ``seq``, cut them into pages per wave, and
    append those to the waves' queues; the new document and the pages to write (by key)."""
    doc = copy_doc(doc, key)
    seq = int(doc.get("seq", 0))
    by_wave: dict[int, list[list[Any]]] = {}
    for rid, entry in spilled:
        seq += 1
        by_wave.setdefault(int(entry["wave"]), []).append([seq, rid, entry])
    pages: dict[str, Page] = {}
    for wave, runs in sorted(by_wave.items()):
        queue = doc["queue"].setdefault(str(wave), {"pages": [], "taken": 0})
        for i in range(0, len(runs), PAGE_SIZE):
            chunk = runs[i : i + PAGE_SIZE]
            name = _key(key, wave, chunk)
            pages[name] = {"window": key, "wave": wave, "runs": chunk}
            queue["pages"].append(name)
    doc["seq"] = seq
    return doc, pages


def named_pages(doc: Doc | None) -> list[str]:
    """Every page the document's queues name, lowest wave first."""
    queue = (doc or {}).get("queue", {})
    return [p for w in sorted(queue, key=int) for p in queue[w].get("pages", [])]


def queued_entries(doc: Doc | None, pages: dict[str, Page]) -> dict[str, dict[str, Any]]:
    """The planned entries still waiting in ``pages`` (those past each wave's ``taken``), by runid."""
    queue = (doc or {}).get("queue", {})
    out: dict[str, dict[str, Any]] = {}
    for page in pages.values():
        taken = int(queue.get(str(page["wave"]), {}).get("taken", 0))
        out |= {rid: entry for seq, rid, entry in page["runs"] if seq > taken}
    return out


def unqueue(page: Page, rids: set[str]) -> Page:
    """The page without the runs ``rids`` (superseded while they waited)."""
    return {**page, "runs": [r for r in page["runs"] if r[1] not in rids]}


def _planned_upto(doc: Doc, wave: int) -> int:
    """Planned runs the document holds (pinned ones aside) of ``wave`` or an earlier one: what a
    refill of ``wave`` adds to. Later waves do not count, or a document full of them would never
    let an earlier wave's paged runs in."""
    return sum(
        1
        for e in doc.get("runs", {}).values()
        if e["state"] == "planned" and not pinned(e) and int(e["wave"]) <= wave
    )


def to_drain(doc: Doc | None, head_max: int) -> list[str]:
    """The pages a refill needs read: none while the document holds at least half its room of
    planned runs up to the lowest paged wave; else that wave's first pages, enough to fill it."""
    queue = (doc or {}).get("queue", {})
    if doc is None or not queue:
        return []
    wave = min(int(w) for w in queue)
    need = head_max - _planned_upto(doc, wave)
    if need < max(1, head_max // 2):
        return []
    return list(queue[str(wave)].get("pages", []))[: need // PAGE_SIZE + 2]


def drain(doc: Doc, key: str, pages: dict[str, Page | None], head_max: int) -> tuple[Doc, list[str]]:
    """Move paged runs into the document, lowest wave first and in order, until it holds
    ``head_max`` planned runs up to that wave or a page it needs is not in ``pages``; the new
    document and the pages it no longer names (to delete once it is written). A page read as
    absent (None) is dropped from its queue: it cannot come back, and the runs behind it must
    not wait on it."""
    doc = copy_doc(doc, key)
    emptied: list[str] = []
    for wave in sorted(doc["queue"], key=int):
        queue = doc["queue"][wave]
        need = head_max - _planned_upto(doc, int(wave))
        while need > 0 and queue["pages"] and queue["pages"][0] in pages:
            name = queue["pages"][0]
            page = pages[name]
            if page is None:
                queue["pages"].pop(0)
                continue
            rest = [r for r in page["runs"] if r[0] > int(queue.get("taken", 0))]
            moved = rest[:need]
            for seq, rid, entry in moved:
                doc["runs"].setdefault(rid, dict(entry))
                queue["taken"] = seq
            need -= len(moved)
            if len(moved) == len(rest):  # the page is through
                queue["pages"].pop(0)
                emptied.append(name)
        if queue["pages"]:
            break  # this wave still waits in its pages: later waves are not needed yet
        del doc["queue"][wave]
    return doc, emptied
