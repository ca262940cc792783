"""Reading and changing a window's waves document together with its pages.

:mod:`shared.domain.waves` decides (pure ``doc -> doc``), :mod:`shared.domain.wave_pages` says
which paged runs move where; this module does the I/O in the one order that keeps a crash or a
lost compare-and-set harmless:

* :func:`join` (planning): read the document and every page it names (once per release, not per
  event), add the runs (latest wins over both), write the new pages, take superseded runs out of
  the pages that hold them (compare-and-set), then compare-and-set the document that names the
  new pages. A loss starts over from the reads; it may leave an unnamed page behind, never a
  named one changed by the loser.
* :func:`decide` (start_upgrades): read the document, and the pages to drain only when its
  planned runs run low, drain, apply the delivery's change, compare-and-set (no write when it
  changed nothing); then delete the pages the document stopped naming.

Both retry a lost compare-and-set after a short random pause, so workers that collide on one
document spread out instead of colliding again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.domain.wave_pages import (
    PAGES,
    Page,
    drain,
    named_pages,
    paginate,
    queued_entries,
    to_drain,
    unqueue,
)
from shared.domain.waves import BUCKET, Added, Doc, add_planned, new_doc
from shared.errors import Conflict
from shared.store.base import KV, Entry
from shared.store.ledger import backoff, write_over

__all__ = ["TRIES", "decide", "join"]

#: Compare-and-set attempts before giving up (each after a pause of up to ``backoff``).
TRIES = 100


async def join(kv: KV, key: str, runs: dict[str, dict[str, Any]], *, head_max: int) -> Added:
    """Add planned ``runs`` to the window ``key`` (see :func:`shared.domain.waves.add_planned`);
    what was decided, ``doc`` as written. A run taken out of a page by an attempt that then lost
    stays superseded (it is out of every queue): it is reported with the final ones."""
    gone: dict[str, str] = {}
    for attempt in range(TRIES):
        await backoff(attempt)
        entry = await kv.get(BUCKET, key)
        doc = None if entry is None else dict(entry.value)
        named: dict[str, Entry] = {}
        for name in named_pages(doc):
            if (read := await kv.get(PAGES, name)) is not None:
                named[name] = read
        queued = queued_entries(doc, {n: dict(p.value) for n, p in named.items()})
        added = add_planned(doc, key, runs, queued=queued, head_max=head_max)
        new, fresh = paginate(added.doc, key, added.spilled)
        try:
            for name, body in fresh.items():
                await kv.put(PAGES, name, body)
            for name, p in named.items():
                out = {r[1] for r in p.value["runs"]} & added.unqueued
                if out:
                    await kv.update(PAGES, name, unqueue(dict(p.value), out), p.revision)
                    gone |= {rid: added.superseded[rid] for rid in out}
            await write_over(kv, BUCKET, key, entry, new)
        except Conflict:
            continue
        added.doc = new
        added.superseded = {**gone, **added.superseded}
        return added
    raise Conflict(f"{BUCKET}/{key}: gave up after {TRIES} concurrent updates")


async def decide(kv: KV, key: str, change: Callable[[Doc], Doc], *, head_max: int) -> Doc:
    """Apply one delivery's ``change`` to the window ``key``'s document, drained first when its
    planned runs ran low; the document as written."""
    for attempt in range(TRIES):
        await backoff(attempt)
        entry = await kv.get(BUCKET, key)
        doc = new_doc(key) if entry is None else dict(entry.value)
        emptied: list[str] = []
        if names := to_drain(doc, head_max):
            pages: dict[str, Page | None] = {}
            for name in names:
                page = await kv.get(PAGES, name)
                pages[name] = None if page is None else dict(page.value)
            doc, emptied = drain(doc, key, pages, head_max)
        new = change(doc)
        if entry is not None and not emptied and new == entry.value:
            return new  # nothing changed (a sweep of an idle window, a replay): nothing to write
        try:
            await write_over(kv, BUCKET, key, entry, new)
        except Conflict:
            continue
        for name in emptied:  # no longer named: nothing can read it again
            await kv.delete(PAGES, name)
        return new
    raise Conflict(f"{BUCKET}/{key}: gave up after {TRIES} concurrent updates")
