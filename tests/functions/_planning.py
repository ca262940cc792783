"""A harness for the planning functions: the real ones, a real bus and store, a FakeClock.

The bus is SQLite or NATS (``Harness(url, ...)``; tests parametrize a ``backend`` fixture with
:func:`bus_url`). Nothing reads a backend's internals: events are recorded by extra durable
consumers, and :class:`WatchedBus` keeps track of what is still owed to whom.

Upgrade outcomes are simulated by publishing ``upgrade.succeeded`` / ``upgrade.failed`` (the
stage functions are not part of these tests).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from events import Event, T
from events.catalog import UpgradeFailed, UpgradeSucceeded, VersionReleased
from shared.bus import Delayed, Subscription, matches, open_bus
from shared.clock import FakeClock
from shared.domain.fleet import parse_fleet
from shared.runtime.host import Runtime
from shared.runtime.manifest import Manifest
from shared.store import open_store

__all__ = ["FLEET", "WATCHED", "Harness", "WatchedBus", "bus_url", "fleet_from", "utc"]

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
        [
            T.WINDOW_OPENED,
            T.UPGRADE_PLANNED,
            T.UPGRADE_SUCCEEDED,
            T.UPGRADE_FAILED,
            T.WAVE_READY,
            T.RUN_APPROVED,
            T.RUN_DENIED,
            T.UPGRADE_CANCELLED,
            T.CONTROL_CHANGED,
        ],
    ),
    "chat_command": ("functions.chat_command.chat_command", [T.CHAT_COMMAND]),
    "upgrade_request": ("functions.upgrade_request.upgrade_request", [T.UPGRADE_REQUESTED]),
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fleet_from(text: str) -> Any:
    return parse_fleet(text, "test-fleet.yaml")


def manifest(names: tuple[str, ...]) -> Manifest:
    functions: dict[str, Any] = {}
    for name in names:
        if name == "window_clock":
            functions[name] = {
                "handler": "functions.window_clock.window_clock",
                "events": [{"schedule": "rate(1 minute)"}],
            }
        else:
            handler, types = HANDLERS[name]
            functions[name] = {"handler": handler, "events": [{"event": {"type": t}} for t in types]}
    return Manifest.model_validate({"service": "test", "functions": functions})


def bus_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The bus (and store) URL for a ``backend`` fixture parametrized with "sqlite" / "nats"."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/u.db"
    server = request.getfixturevalue("nats_server")  # started only when a NATS case runs
    return f"{server.url}?namespace={request.getfixturevalue('namespace')}"


#: Event types the harness records (``Harness.events``); one durable recorder consumer each.
WATCHED = (
    T.CLOCK_TICK,
    T.VERSION_RELEASED,
    T.UPGRADE_PLANNED,
    T.WINDOW_OPENED,
    T.WINDOW_CLOSING,
    T.WAVE_READY,
    T.STAGE_REQUESTED,
    T.UPGRADE_SUCCEEDED,
    T.UPGRADE_FAILED,
    T.UPGRADE_HALTED,
    T.APPROVAL_REQUESTED,
    T.RUN_APPROVED,
    T.RUN_DENIED,
    T.UPGRADE_CANCELLED,
    T.CONTROL_CHANGED,
    T.CHAT_REPLY,
)


class WatchedBus:
    """A Bus that passes everything to the real one and keeps the books the harness needs.

    Every published event (by the test, the runtime's ticks, or emitted by a handler) is noted
    once per id, as the bus dedupes, with the consumers it is owed to (the subscriptions it
    ``matches``); a handler that returns pays its delivery (and notes what it emitted first, in
    the same step). So without reading any backend's tables the harness knows what is still to
    be delivered, and which ``Delayed`` events are still waiting.
    """

    def __init__(self, bus: Any) -> None:
        self.inner = bus
        self.url = bus.url
        self.subs: list[Subscription] = []
        self.seen: set[str] = set()
        #: id → (event, real time it is due) for events published with a delay.
        self.delayed: dict[str, tuple[Event, float]] = {}
        #: (consumer, event id) published and not yet handled.
        self.owed: set[tuple[str, str]] = set()
        self.failures: dict[tuple[str, str], int] = {}
        #: handlers running on an event published without a delay.
        self.busy = 0

    def __getattr__(self, name: str) -> Any:  # pending(), conn, js … of the real bus
        return getattr(self.inner, name)

    def note(self, event: Event, delay: float = 0.0) -> None:
        if event.id in self.seen:
            return  # the bus drops a second publish of an id
        self.seen.add(event.id)
        if delay > 0:
            self.delayed[event.id] = (event, time.time() + delay)
        self.owed.update((s.name, event.id) for s in self.subs if matches(event, s.type, s.where))

    def waiting(self, event_id: str) -> bool:
        """Published and not yet handled by every consumer it is owed to."""
        return any(eid == event_id for _, eid in self.owed)

    def due_work(self) -> int:
        """Deliveries owed for events published without a delay, plus handlers running on them."""
        return self.busy + sum(1 for _, eid in self.owed if eid not in self.delayed)

    async def publish(self, event: Event, *, delay: float = 0.0) -> bool:
        self.note(event, delay)
        return await self.inner.publish(event, delay=delay)

    def subscribe(self, sub: Subscription) -> None:
        self.subs.append(sub)
        self.inner.subscribe(replace(sub, handler=self._watch(sub)))

    def _watch(self, sub: Subscription):
        handler = sub.handler
        assert handler is not None

        async def handle(event: Event):
            key = (sub.name, event.id)
            immediate = event.id not in self.delayed
            self.busy += immediate
            try:
                out = await handler(event)
            except Exception:
                self.failures[key] = self.failures.get(key, 0) + 1
                if self.failures[key] >= sub.max_attempts:
                    self.owed.discard(key)  # dead-lettered: nothing more will come of it
                raise
            finally:
                self.busy -= immediate
            for item in out or ():
                if isinstance(item, Delayed):
                    self.note(item.event, item.delay)
                else:
                    self.note(item)
            self.owed.discard(key)
            return out

        return handle

    async def start(self) -> None:
        await self.inner.start()

    async def run(self) -> None:
        await self.inner.run()

    async def close(self) -> None:
        await self.inner.close()

    async def dead_letters(self) -> list[Any]:
        return await self.inner.dead_letters()


class Harness:
    """Start with ``async with Harness(url, ...) as h``; ``h.at(when)`` moves domain time and settles.

    ``url`` is a bus URL (``sqlite:///…`` or ``nats://…?namespace=…``); the store lives on the same
    backend. Events of the ``WATCHED`` types are recorded, in delivery order, by extra durable
    consumers registered before anything is published.
    """

    def __init__(
        self, url: str, fleet: Any, start: datetime, *, functions: tuple[str, ...], speed: float = 6000.0
    ):
        self.url = url
        self.clock = FakeClock(start, speed=speed)
        self.fleet = fleet
        self.bus = WatchedBus(open_bus(url))
        self.recorded: dict[str, list[Event]] = {t: [] for t in WATCHED}
        for type_ in WATCHED:
            self.bus.subscribe(
                Subscription(f"record_{type_.replace('.', '_')}", type_, {}, self._record, concurrency=1)
            )
        self.runtime = Runtime(manifest(functions), self.bus, open_store(url), clock=self.clock, fleet=fleet)
        self.ticking = "window_clock" in functions

    async def _record(self, event: Event) -> None:
        got = self.recorded[event.type]
        if all(e.id != event.id for e in got):  # at-least-once: a redelivery is not a new event
            got.append(event)

    async def __aenter__(self) -> Harness:
        await self.runtime.start()  # starts the bus: every consumer (recorders included) exists now
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.stop()

    @property
    def store(self):
        return self.runtime.store

    def events(self, type_: str) -> list[Event]:
        """Every event of ``type_`` (one of ``WATCHED``) delivered so far, in delivery order."""
        return list(self.recorded[type_])

    def delayed(self, type_: str) -> list[tuple[Event, float]]:
        """Events of ``type_`` published with a delay and still waiting on the bus (not yet handled
        by every consumer), with their real delay from now."""
        now = time.time()
        return [
            (e, due - now)
            for eid, (e, due) in self.bus.delayed.items()
            if e.type == type_ and self.bus.waiting(eid)
        ]

    async def publish(self, event: Event) -> None:
        await self.runtime.bus.publish(event)
        await self.settle()

    async def settle(self, limit: float = 30.0) -> None:
        """Until every event published without a delay has been handled by all its consumers and
        no handler runs on one, on a few polls in a row. Events delayed into the future may
        remain, and are not waited for even once due: a test waits for what they cause with
        ``eventually``. (``bus.pending()`` cannot tell these apart: it counts delayed events.)"""
        deadline = time.monotonic() + limit
        quiet = 0
        while quiet < 3:
            quiet = 0 if self.bus.due_work() else quiet + 1
            if time.monotonic() > deadline:
                raise AssertionError(f"the bus did not settle: {sorted(self.bus.owed)[:10]}")
            await asyncio.sleep(0.02)

    async def at(self, when: datetime) -> None:
        """Move domain time to ``when``; with the window clock running, wait for that minute's tick."""
        self.clock.set(when)
        if self.ticking:
            slot = int(when.timestamp() // 60 * 60)
            deadline = time.monotonic() + 20
            while not any(int(e.data.at.timestamp()) == slot for e in self.events(T.CLOCK_TICK)):
                assert time.monotonic() < deadline, "no tick"
                await asyncio.sleep(0.01)
        await self.settle()

    # -- simulated pipeline input/outcomes ---------------------------------------------------

    async def release(
        self, product: str, version: str, released_at: datetime | None = None, id: str | None = None
    ) -> None:
        data = VersionReleased(product=product, version=version, released_at=released_at or self.clock.now())
        await self.publish(Event(type=T.VERSION_RELEASED, data=data, **({"id": id} if id else {})))

    async def outcome(self, stage_requested: Event, ok: bool, stage: str = "upgrade") -> None:
        d = stage_requested.data
        if ok:
            data: Any = UpgradeSucceeded(
                target=d.target, kind=d.kind, from_version=d.from_version, to_version=d.to_version
            )
            type_ = T.UPGRADE_SUCCEEDED
        else:
            data = UpgradeFailed(
                target=d.target,
                kind=d.kind,
                from_version=d.from_version,
                to_version=d.to_version,
                stage=stage,
                code="CCE.01400001",
                message="precheck failed",
            )
            type_ = T.UPGRADE_FAILED
        await self.publish(stage_requested.follow(type_, data, stage=None))

    async def run(self, runid: str) -> dict[str, Any] | None:
        return await self.store.ledger.run(runid)

    async def waves(self, key: str = "night") -> dict[str, Any] | None:
        e = await self.store.kv.get("waves", key)
        return None if e is None else e.value
