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
    outs = bus.conn.execute("SELECT COUNT(*) FROM bus_events WHERE json_extract(body, '$.target') = 'down'").fetchone()[0]
    assert outs == 0
    assert bus.conn.execute("SELECT COUNT(*) FROM bus_deliveries WHERE consumer = 'slow'").fetchone()[0] == 1
    await bus.close()
    task.cancel()


async def _noop(event):
    return []
