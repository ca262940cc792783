"""A harness for the planning functions: the real ones, a real SQLite bus and store, a FakeClock.

Upgrade outcomes are simulated by publishing ``upgrade.succeeded`` / ``upgrade.failed`` (the
stage functions are not part of these tests).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from events import Event, T, from_json
from events.catalog import UpgradeFailed, UpgradeSucceeded, VersionReleased
from shared.bus import open_bus
from shared.clock import FakeClock
from shared.fleet import parse_fleet
from shared.manifest import Manifest
from shared.runtime import Runtime
from shared.store import open_store

__all__ = ["FLEET", "Harness", "fleet_from", "utc"]

FLEET = """
clouds:
  huawei: {region: ap-southeast-1, project_id: p1}
windows:
  night: {rrule: "FREQ=DAILY;BYHOUR=2", duration: 2h, timezone: Europe/Berlin, cutoff: 30m, concurrency: 2}
waves: {bake: 30m}
durations: {cce: {precheck: 20m}}
targets:
  - {name: canary, kind: cce, cluster_id: c0, window: night, wave: 0, version: v1.28.0-r0}
  - {name: prod-a, kind: cce, cluster_id: c1, window: night, wave: 1, version: v1.28.0-r0}
  - {name: prod-b, kind: cce, cluster_id: c2, window: night, wave: 1, version: v1.28.0-r0}
  - {name: prod-c, kind: cce, cluster_id: c3, window: night, wave: 1, version: v1.28.0-r0}
"""

HANDLERS = {
    "plan_upgrades": ("functions.plan_upgrades.plan_upgrades", [T.VERSION_RELEASED]),
    "start_upgrades": (
        "functions.start_upgrades.start_upgrades",
        [T.WINDOW_OPENED, T.UPGRADE_PLANNED, T.UPGRADE_SUCCEEDED, T.UPGRADE_FAILED, T.WAVE_READY],
    ),
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fleet_from(text: str) -> Any:
    return parse_fleet(text, "test-fleet.yaml")


def manifest(names: tuple[str, ...]) -> Manifest:
    functions: dict[str, Any] = {}
    for name in names:
        if name == "window_clock":
            functions[name] = {"handler": "functions.window_clock.window_clock", "events": [{"schedule": "rate(1 minute)"}]}
        else:
            handler, types = HANDLERS[name]
            functions[name] = {"handler": handler, "events": [{"event": {"type": t}} for t in types]}
    return Manifest.model_validate({"service": "test", "functions": functions})


class Harness:
    """Start with ``async with Harness(...) as h``; ``h.at(when)`` moves domain time and settles."""

    def __init__(self, tmp_path, fleet: Any, start: datetime, *, functions: tuple[str, ...], speed: float = 6000.0):
        self.url = f"sqlite:///{tmp_path}/u.db"
        self.clock = FakeClock(start, speed=speed)
        self.fleet = fleet
        self.runtime = Runtime(manifest(functions), open_bus(self.url), open_store(self.url), clock=self.clock, fleet=fleet)
        self.ticking = "window_clock" in functions

    async def __aenter__(self) -> Harness:
        await self.runtime.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.stop()

    @property
    def store(self):
        return self.runtime.store

    @property
    def conn(self):
        return self.runtime.bus.conn

    def events(self, type_: str) -> list[Event]:
        rows = self.conn.execute("SELECT body FROM bus_events WHERE type = ? ORDER BY rowid", (type_,)).fetchall()
        return [from_json(b) for (b,) in rows]

    def delayed(self, type_: str) -> list[tuple[Event, float]]:
        """Events of ``type_`` waiting on the bus, with their real delay from now."""
        rows = self.conn.execute(
            "SELECT e.body, d.visible_at FROM bus_deliveries d JOIN bus_events e ON e.id = d.event_id"
            " WHERE e.type = ? AND d.attempts = 0",
            (type_,),
        ).fetchall()
        return [(from_json(b), at - time.time()) for b, at in rows]

    async def publish(self, event: Event) -> None:
        await self.runtime.bus.publish(event)
        await self.settle()

    async def settle(self, limit: float = 20.0) -> None:
        """Until nothing is due or in flight (events delayed into the future may remain)."""
        deadline = time.monotonic() + limit
        quiet = 0
        while quiet < 3:
            busy = self.conn.execute(
                "SELECT COUNT(*) FROM bus_deliveries WHERE attempts > 0 OR visible_at <= ?", (time.time(),)
            ).fetchone()[0]
            quiet = 0 if busy else quiet + 1
            if time.monotonic() > deadline:
                raise AssertionError("the bus did not settle")
            await asyncio.sleep(0.02)

    async def at(self, when: datetime) -> None:
        """Move domain time to ``when``; with the window clock running, wait for that minute's tick."""
        self.clock.set(when)
        if self.ticking:
            slot = int(when.timestamp() // 60 * 60)
            deadline = time.monotonic() + 10
            while not any(int(e.data.at.timestamp()) == slot for e in self.events(T.CLOCK_TICK)):
                assert time.monotonic() < deadline, "no tick"
                await asyncio.sleep(0.01)
        await self.settle()

    # -- simulated pipeline input/outcomes ---------------------------------------------------

    async def release(self, product: str, version: str, released_at: datetime | None = None, id: str | None = None) -> None:
        data = VersionReleased(product=product, version=version, released_at=released_at or self.clock.now())
        await self.publish(Event(type=T.VERSION_RELEASED, data=data, **({"id": id} if id else {})))

    async def outcome(self, stage_requested: Event, ok: bool, stage: str = "upgrade") -> None:
        d = stage_requested.data
        if ok:
            data: Any = UpgradeSucceeded(target=d.target, kind=d.kind, from_version=d.from_version, to_version=d.to_version)
            type_ = T.UPGRADE_SUCCEEDED
        else:
            data = UpgradeFailed(
                target=d.target, kind=d.kind, from_version=d.from_version, to_version=d.to_version, stage=stage,
                code="CCE.01400001", message="precheck failed",
            )
            type_ = T.UPGRADE_FAILED
        await self.publish(stage_requested.follow(type_, data, stage=None))

    async def run(self, runid: str) -> dict[str, Any] | None:
        return await self.store.ledger.run(runid)

    async def waves(self, key: str = "night") -> dict[str, Any] | None:
        e = await self.store.kv.get("waves", key)
        return None if e is None else e.value
