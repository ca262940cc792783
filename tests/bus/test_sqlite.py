"""The Bus conformance suite on the embedded SQLite backend, plus what is SQLite's own."""

from __future__ import annotations

import pytest

from events import T
from events.catalog import Echo
from shared.bus import Subscription
from shared.bus.sqlite import SqliteBus
from tests.bus.conformance import BusConformance
from tests.helpers import echo, eventually


class TestSqliteBus(BusConformance):
    @pytest.fixture
    def bus_url(self, tmp_path):
        return lambda lease=30.0: f"sqlite:///{tmp_path}/bus.db?lease={lease}"


async def test_ack_after_lost_lease_rolls_back_the_outputs(tmp_path):
    """Outbox: if our lease was taken over, our outputs must not be committed either."""
    clock = [1000.0]
    bus = SqliteBus(str(tmp_path / "b.db"), lease=5.0, now=lambda: clock[0])
    await bus.start()
    gate = __import__("asyncio").Event()

    async def slow(event):
        await gate.wait()
        return [event.follow(T.ECHO, Echo(message="out", reply=False), target="down")]

    bus.subscribe(Subscription("slow", T.ECHO, {"target": "up"}, slow))
    bus.subscribe(Subscription("down", T.ECHO, {"target": "down"}, _noop))
    import asyncio

    task = asyncio.create_task(bus.run())
    await bus.publish(echo(target="up"))
    await eventually(lambda: bus._inflight)
    # another process steals the expired lease: bump attempts behind our back
    bus.conn.execute("UPDATE bus_deliveries SET attempts = attempts + 1 WHERE consumer = 'slow'")
    gate.set()
    await eventually(lambda: not bus._inflight)
    outs = bus.conn.execute(
        "SELECT COUNT(*) FROM bus_events WHERE json_extract(body, '$.target') = 'down'"
    ).fetchone()[0]
    assert outs == 0
    assert bus.conn.execute("SELECT COUNT(*) FROM bus_deliveries WHERE consumer = 'slow'").fetchone()[0] == 1
    await bus.close()
    task.cancel()


async def _noop(event):
    return []


async def test_a_locked_database_does_not_stop_the_consumer(tmp_path):
    """Another process holding the file past busy_timeout: the loop logs, waits and carries on; the
    uncommitted outcome's delivery comes back when its lease ends."""
    import asyncio
    import sqlite3

    path = str(tmp_path / "b.db")
    bus = SqliteBus(path, lease=1.0)
    await bus.start()
    bus.conn.execute("PRAGMA busy_timeout=50")
    gate = asyncio.Event()
    calls = []

    async def handler(event):
        calls.append(event.id)
        await gate.wait()
        return []

    bus.subscribe(Subscription("h", T.ECHO, {}, handler))
    await bus.start()
    task = asyncio.create_task(bus.run())
    await bus.publish(echo())
    await eventually(lambda: calls)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    gate.set()
    await asyncio.sleep(0.5)  # the ack's commit fails while the lock is held
    assert not task.done(), "the consumer loop must survive a locked database"
    other.execute("COMMIT")
    other.close()
    await eventually(lambda: len(calls) >= 2, timeout=15)

    async def drained():
        return await bus.pending() == 0

    deadline = asyncio.get_running_loop().time() + 15
    while not await drained():
        assert asyncio.get_running_loop().time() < deadline, "delivery never acked"
        await asyncio.sleep(0.05)
    await bus.close()
    task.cancel()


async def test_ledger_writes_commit_with_the_outbox(tmp_path):
    """Bus and store in one file: a handler's ledger writes land in its outbox transaction, so
    a process killed before that commit leaves neither the run's new state nor its events."""
    import asyncio

    from shared.store.ledger import Ledger
    from shared.store.sqlite import SqliteKV

    path = str(tmp_path / "one.db")
    bus, kv, other = SqliteBus(path), SqliteKV(path), SqliteKV(path)
    for part in (bus, kv, other):
        await part.start()
    await Ledger(kv).open_run("r1", state="running")  # outside any handler: written at once
    gate, wrote = asyncio.Event(), asyncio.Event()
    heard: list = []

    async def ender(event):
        guess = await Ledger(kv).update_run("r1", state="succeeded")
        assert guess["state"] == "succeeded"  # the handler sees what it will commit
        wrote.set()
        await gate.wait()
        return [event.follow(T.ECHO, Echo(message="done", reply=False), target="down")]

    async def down(event):
        heard.append(event)
        return []

    bus.subscribe(Subscription("ender", T.ECHO, {"target": "up"}, ender))
    bus.subscribe(Subscription("down", T.ECHO, {"target": "down"}, down))
    task = asyncio.create_task(bus.run())
    try:
        await bus.publish(echo(target="up"))
        await asyncio.wait_for(wrote.wait(), 10)
        # written by the handler, not yet committed: another connection sees the old state
        assert (await Ledger(other).run("r1"))["state"] == "running"
        gate.set()
        await eventually(lambda: heard)
        assert (await Ledger(other).run("r1"))["state"] == "succeeded"
    finally:
        await bus.close()
        task.cancel()
        for part in (kv, other):
            await part.close()


async def test_a_group_commit_drops_only_the_handler_whose_lease_was_lost(tmp_path):
    """Two handlers finished in one group commit, one of them past a lease another consumer took:
    that one's deferred write and outputs are dropped, the other's commit with its ack."""
    import asyncio

    from shared.store.sqlite import SqliteKV

    path = str(tmp_path / "one.db")
    clock = [1000.0]
    bus, kv = SqliteBus(path, lease=5.0, now=lambda: clock[0]), SqliteKV(path)
    await kv.start()
    gate, started = asyncio.Event(), []

    async def slow(event):
        await kv.defer("marks", event.data.message, lambda _: {"by": "slow"})
        started.append(event.id)
        await gate.wait()
        return [event.follow(T.ECHO, Echo(message=f"out-{event.data.message}", reply=False), target="down")]

    bus.subscribe(Subscription("slow", T.ECHO, {"target": "up"}, slow))
    await bus.start()
    task = asyncio.create_task(bus.run())
    try:
        lost, held = echo(target="up", message="lost"), echo(target="up", message="held")
        await bus.publish(lost)
        await bus.publish(held)
        await eventually(lambda: len(started) == 2)
        # another process took the expired lease of one: its attempt moved on behind our back
        bus.conn.execute("UPDATE bus_deliveries SET attempts = attempts + 1 WHERE event_id = ?", (lost.id,))
        gate.set()
        await eventually(lambda: not bus._inflight)
        outs = bus.conn.execute(
            "SELECT json_extract(body, '$.data.message') FROM bus_events WHERE json_extract(body, '$.target') = 'down'"
        ).fetchall()
        assert outs == [("out-held",)]
        left = bus.conn.execute("SELECT event_id FROM bus_deliveries WHERE consumer = 'slow'").fetchall()
        assert left == [(lost.id,)]
        assert await kv.get("marks", "lost") is None
        assert (await kv.get("marks", "held")).value == {"by": "slow"}  # type: ignore[union-attr]
    finally:
        await bus.close()
        task.cancel()
        await kv.close()


async def test_a_cycle_rolled_back_after_claiming_takes_no_slot(tmp_path, monkeypatch):
    """A cycle's transaction fails after it leased a delivery (the database locked mid-cycle):
    the lease rolls back, and so must the slot it took, or a subscription with one slot never
    claims again. The failure is injected at the second subscription's claim, inside the
    cycle's real transaction."""
    import asyncio
    import sqlite3

    bus = SqliteBus(str(tmp_path / "b.db"), lease=30.0)
    await bus.start()
    calls: list[str] = []

    async def handler(event):
        calls.append(event.id)
        return []

    bus.subscribe(Subscription("one", T.ECHO, {"target": "one"}, handler, concurrency=1))
    bus.subscribe(Subscription("other", T.ECHO, {"target": "other"}, _noop))
    real = bus._claim
    failed: list[str] = []

    def claim(conn, sub, limit):
        if sub.name == "other" and not failed:
            failed.append(sub.name)
            raise sqlite3.OperationalError("database is locked")
        return real(conn, sub, limit)

    monkeypatch.setattr(bus, "_claim", claim)
    await bus.publish(echo(target="one"))
    task = asyncio.create_task(bus.run())
    await eventually(lambda: calls, timeout=15)
    assert failed, "the injected failure did not happen"
    await bus.close()
    task.cancel()
