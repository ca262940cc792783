"""The live updates' change marks (:mod:`shared.dashboard.marks`) and the watcher's poll
(:meth:`shared.dashboard.sse.Changes.poll`) on real stores, SQLite file and nats-server.

Reads are counted on the real store: its KV read methods (``get``, ``keys``) wrapped in a
counter, and what reaches the backend — SQL statements on the store's own connection (sqlite3's
trace callback), ``STREAM.INFO`` requests to the server (JetStream's ``stream_info`` wrapped).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from nats.js.client import JetStreamContext

from shared.dashboard.marks import WATCHED, fingerprint
from shared.dashboard.sse import Changes
from shared.domain.waves import BUCKET as WAVES
from shared.engine.control import CONTROL
from shared.store import Store, open_store
from shared.store.audit import AUDIT
from shared.store.ledger import RUNS, VERSIONS, RunState
from shared.store.sqlite import SqliteKV
from tests.functions._planning import bus_url


@pytest.fixture(params=["sqlite", "nats"])
async def store(request: pytest.FixtureRequest, tmp_path) -> Any:
    s = open_store(bus_url(request, tmp_path))
    await s.start()
    try:
        yield s
    finally:
        await s.close()


class Reads:
    """Every read of ``store`` from now on: KV calls by name, and backend requests."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[str] = Counter()
        kv = store.kv
        for method in ("get", "keys"):
            real = getattr(kv, method)

            async def counted(*args: Any, _real: Any = real, _name: str = method, **kwargs: Any) -> Any:
                self.calls[_name] += 1
                return await _real(*args, **kwargs)

            monkeypatch.setattr(kv, method, counted)
        if isinstance(kv, SqliteKV):
            kv.conn.set_trace_callback(lambda _sql: self.calls.update(["sql"]))
        real_info = JetStreamContext.stream_info

        async def info(js: JetStreamContext, *args: Any, **kwargs: Any) -> Any:
            self.calls["stream_info"] += 1
            return await real_info(js, *args, **kwargs)

        monkeypatch.setattr(JetStreamContext, "stream_info", info)

    def take(self) -> Counter[str]:
        """The reads since the last take."""
        got, self.calls = self.calls, Counter()
        return got


async def _history(store: Store, start: int, n: int) -> None:
    for i in range(start, start + n):
        await store.ledger.open_run(f"r{i:015x}", target=f"t-{i}", kind="cce", state=RunState.SUCCEEDED)
        await store.audit.record({"id": f"cmd{i}", "at": "2026-06-09T12:00:00+00:00", "text": "status"})


async def test_an_idle_poll_costs_the_same_few_reads_however_long_the_history(store, monkeypatch) -> None:
    changes = Changes(store.kv)
    await _history(store, 0, 3)
    reads = Reads(store, monkeypatch)
    assert await changes.poll() is False  # the baseline
    reads.take()
    idle = []
    for grown in (0, 40):
        await _history(store, 100, grown)
        await changes.poll()  # (the history grew: that is a change)
        reads.take()
        for _ in range(3):
            assert await changes.poll() is False
            idle.append(reads.take())
    # no per-key reads at all, and the same count of backend requests with 3 or 43 runs
    assert all(tick["get"] == tick["keys"] == 0 for tick in idle), idle
    assert all(tick == idle[0] for tick in idle), idle
    if isinstance(store.kv, SqliteKV):
        assert idle[0] == Counter(sql=1)  # the revision counter's row
    else:
        assert idle[0] == Counter(stream_info=len(WATCHED))  # each watched bucket's last sequence
    await changes.marks.close()


async def test_a_poll_moves_exactly_when_the_old_fingerprint_would(store) -> None:
    """The mark and the per-key fingerprint it replaces agree on every kind of write: the
    browser gets the same ``changed`` events."""
    kv = store.kv
    changes = Changes(kv)
    await _history(store, 0, 2)
    await changes.poll()
    last = await fingerprint(kv)
    writes: list[tuple[str, Any]] = [
        ("a run", lambda: store.ledger.open_run("r00000000000000a", target="t", kind="cce")),
        ("a stage", lambda: store.ledger.note_stage("r00000000000000a", "precheck", state="running")),
        ("a wave document", lambda: kv.put(WAVES, "night", {"runs": {}})),
        ("the control document", lambda: kv.put(CONTROL, "control", {"pauses": {}})),
        ("a version", lambda: kv.put(VERSIONS, "t", {"version": "1"})),
        ("an audit entry", lambda: store.audit.record({"id": "cmd-new", "text": "help"})),
        ("a claim", lambda: kv.put("claims", "k1", {"state": "claimed"})),
        ("another bucket", lambda: kv.put("durations", "cce", {"samples": [1]})),
        ("nothing", None),
    ]
    seen = []
    for what, write in writes:
        if write is not None:
            await write()
        now = await fingerprint(kv)
        seen.append((what, await changes.poll(), now != last))
        last = now
    assert [(what, moved) for what, moved, _ in seen] == [(what, old) for what, _, old in seen]
    assert [what for what, moved, _ in seen if moved] == [
        "a run",
        "a stage",
        "a wave document",
        "the control document",
        "a version",
        "an audit entry",
    ]
    assert {RUNS, WAVES, CONTROL, VERSIONS, AUDIT} == set(WATCHED)
    await changes.marks.close()
