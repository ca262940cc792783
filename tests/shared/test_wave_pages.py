"""The waves document's pages (pure): planned runs beyond the head wait in order, drain once, and
latest-wins sees them; a whole window's life simulated on the pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import wave_pages, waves
from shared.domain.wave_pages import drain, named_pages, paginate, queued_entries, to_drain, unqueue
from shared.domain.windows import Gate

NOW = datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
KEY = "night"


def _fits(_run: dict[str, Any]) -> Gate:
    return Gate(True, "")


def _entry(target: str, wave: int, version: str = "v1.29.0-r0", **more: Any) -> dict[str, Any]:
    return {
        "target": target,
        "kind": "cce",
        "wave": wave,
        "from_version": "v1.28.0-r0",
        "to_version": version,
        "planned_at": NOW.isoformat(),
        **more,
    }


class Store:
    """The document and its pages as plain dicts, with the engine's order of writes."""

    def __init__(self, head_max: int) -> None:
        self.head_max = head_max
        self.doc: dict[str, Any] | None = None
        self.pages: dict[str, dict[str, Any]] = {}

    def plan(self, runs: dict[str, dict[str, Any]]) -> waves.Added:
        named = {n: self.pages[n] for n in named_pages(self.doc) if n in self.pages}
        added = waves.add_planned(
            self.doc, KEY, runs, queued=queued_entries(self.doc, named), head_max=self.head_max
        )
        new, fresh = paginate(added.doc, KEY, added.spilled)
        self.pages |= fresh
        for n, p in named.items():
            self.pages[n] = unqueue(p, added.unqueued)
        self.doc = new
        return added

    def step(self, concurrency: int, now: datetime) -> list[str]:
        """One start_upgrades delivery: drain if low, select; the runs released."""
        doc = self.doc or waves.new_doc(KEY)
        names = to_drain(doc, self.head_max)
        if names:
            doc, emptied = drain(doc, KEY, {n: self.pages.get(n) for n in names}, self.head_max)
            for n in emptied:
                del self.pages[n]
        doc, _ = waves.select(
            doc, KEY, now=now, concurrency=concurrency, bake=timedelta(0), fits=_fits, by=f"e{now}"
        )
        self.doc = doc
        return [r for r, e in doc["runs"].items() if e.get("released_by") == f"e{now}"]

    def finish(self, rid: str, now: datetime) -> None:
        self.doc = waves.finish(self.doc, KEY, rid, ok=True, now=now, by="x")

    def planned_in_head(self) -> int:
        return sum(1 for e in (self.doc or {}).get("runs", {}).values() if e["state"] == "planned")


def _waves_in(store: Store) -> int:
    return len({e["wave"] for e in (store.doc or {}).get("runs", {}).values()})


def _life(store: Store, concurrency: int) -> list[str]:
    """Release and finish everything, one delivery at a time; the release order."""
    order: list[str] = []
    now = NOW
    for _ in range(10_000):
        now += timedelta(seconds=1)
        released = store.step(concurrency, now)
        order += released
        running = [r for r, e in (store.doc or {})["runs"].items() if e["state"] == "running"]
        assert len(running) <= concurrency
        # an earlier wave drained in front of a full head adds its own room: bounded per wave
        assert store.planned_in_head() <= store.head_max * max(1, _waves_in(store))
        if not running and not released:
            break
        for rid in running[:1]:  # one run ends per delivery
            store.finish(rid, now)
    return order


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 30)), min_size=1, max_size=4),
    page=st.integers(1, 7),
    head=st.integers(1, 9),
    concurrency=st.integers(1, 4),
)
def test_every_planned_run_is_released_once_wave_by_wave_in_order(sizes, page, head, concurrency):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wave_pages, "PAGE_SIZE", page)
        store = Store(head_max=head)
        planned: list[tuple[int, str]] = []
        n = 0
        for wave, count in sizes:
            batch = {}
            for _ in range(count):
                n += 1
                batch[f"r{n:04d}"] = _entry(f"t{n:04d}", wave)
                planned.append((wave, f"r{n:04d}"))
            store.plan(batch)
            # the document holds at most its room of planned runs; the rest wait in pages
            assert store.planned_in_head() <= head
        order = _life(store, concurrency)
    assert sorted(order) == sorted(r for _, r in planned), "every run released, and once"
    waves_of = dict((r, w) for w, r in planned)
    assert [waves_of[r] for r in order] == sorted(waves_of[r] for r in order), "lower waves first"
    for w in {w for w, _ in planned}:  # within a wave, in the order planned
        mine = [r for r in order if waves_of[r] == w]
        assert mine == sorted(mine)
    assert store.pages == {}, "every page deleted once drained"
    assert (store.doc or {}).get("queue") == {}


def test_latest_wins_across_the_pages():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wave_pages, "PAGE_SIZE", 3)
        store = Store(head_max=2)
        store.plan({f"a{i}": _entry(f"t{i}", 1) for i in range(8)})  # 2 in the head, 6 in pages
        assert len(store.pages) == 2
        newer = store.plan({f"b{i}": _entry(f"t{i}", 1, "v1.30.0-r0") for i in (0, 5, 7)})
        assert newer.superseded == {"a0": "b0", "a5": "b5", "a7": "b7"}
        assert newer.unqueued == {"a5", "a7"}, "the paged ones are taken out of their pages"
        older = store.plan({"c5": _entry("t5", 1, "v1.28.5-r0")})
        assert "c5" in older.lost, "a planned run in a page goes as far"
        again = store.plan({f"a{i}": _entry(f"t{i}", 1) for i in range(1, 5)})  # a replay
        assert again.spilled == [] and again.lost == {} and again.superseded == {}
        order = _life(store, 2)
    assert sorted(order) == sorted(["a1", "a2", "a3", "a4", "a6", "b0", "b5", "b7"])


def test_runs_with_an_approval_stay_in_the_document():
    store = Store(head_max=1)
    approval = {"state": "pending", "expires_at": NOW.isoformat()}
    added = store.plan(
        {"r1": _entry("t1", 1), "r2": _entry("t2", 1, approval=approval), "r3": _entry("t3", 1)}
    )
    assert [r for r, _ in added.spilled] == ["r3"]
    assert set(store.doc["runs"]) == {"r1", "r2"}


def test_a_later_wave_waits_while_a_lower_one_is_paged():
    store = Store(head_max=1)
    store.plan({"w1": _entry("t1", 1)})
    store.plan({"w0a": _entry("c1", 0), "w0b": _entry("c2", 0)})  # w0b: paged behind w0a
    # the head is full of wave 1: both canaries wait in a page, and still go first
    assert set(store.doc["runs"]) == {"w1"} and waves.queued_waves(store.doc) == {0}
    assert _life(store, 3) == ["w0a", "w0b", "w1"]


def test_a_missing_page_is_skipped_not_waited_on():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wave_pages, "PAGE_SIZE", 2)
        store = Store(head_max=1)
        store.plan({f"r{i}": _entry(f"t{i}", 1) for i in range(5)})  # r0 in the head, r1..r4 in 2 pages
        del store.pages[named_pages(store.doc)[0]]  # r1, r2 lost with it
        order = _life(store, 1)
    assert order == ["r0", "r3", "r4"]
