"""The bus host: binds the manifest's functions to one bus and store, and runs the clock.

One class, two ways to run it: the **embedded runtime** (``upshift serve``, ``upshift demo``,
the tests) binds every function of ``serverless.yml`` in one process; a **worker**
(``upshift worker --only …``) binds a subset, so N processes on one NATS bus share the load.
The manifest is checked when binding: a handler not decorated with ``@upshift_function``, or one
typed for another event's data, is a ``ConfigError`` before anything runs.

Per function and trigger:

* ``event`` → a durable bus subscription named after the function (``name``, ``name_2`` … for a
  second trigger); the runtime builds the context, calls the function (the bus has bound the
  event's correlation to the log) and hands its emitted events back to the bus, which
  publishes them before acking (the outbox).
  Each delivery is counted per function, ``ok`` or ``error`` (:mod:`shared.runtime.metrics`).
* ``schedule`` → every period the runtime publishes a ``clock.tick`` event whose id is the
  function and the period's start, so two runtimes on one bus tick the function once.
* ``http`` → a route, served by :mod:`shared.runtime.server` through :meth:`Runtime.call_http`
  (and an ``aio.http`` target under functions-framework, :mod:`shared.runtime.framework`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from events.catalog import T, Tick
from events.envelope import Event, consequence
from shared.bus import Bus, Emitted, Handler, Subscription, publish_all
from shared.clock import Clock
from shared.clouds.sessions import close_sessions
from shared.errors import ConfigError
from shared.log import get_logger
from shared.runtime import metrics
from shared.runtime.function import Context, HttpReply, HttpRequest, UpshiftFunction
from shared.runtime.manifest import Manifest, resolve_function
from shared.store import Store

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients
    from shared.domain.fleet import Fleet

__all__ = ["Bound", "Runtime"]


@runtime_checkable
class _Drains(Protocol):
    """A bus that can say how many deliveries it still owes (both backends; not in ``Bus``)."""

    async def pending(self) -> int: ...


@dataclass
class Bound:
    """A bound function and the ``(METHOD, path)`` routes its ``http`` triggers ask for."""

    name: str
    function: UpshiftFunction
    http: list[tuple[str, str]] = field(default_factory=list)


class Runtime:
    """The manifest's functions (all, or ``only`` these) bound to ``bus``; ``start``/``stop``."""

    def __init__(
        self,
        manifest: Manifest,
        bus: Bus,
        store: Store,
        *,
        clock: Clock | None = None,
        fleet: Fleet | None = None,
        clouds: CloudClients | None = None,
        settings: dict[str, Any] | None = None,
        only: Sequence[str] | None = None,
    ) -> None:
        self.manifest = manifest
        self.bus = bus
        self.store = store
        self.clock = clock or Clock()
        self.fleet = fleet
        self.clouds = clouds
        self.settings = settings or {}
        self.functions: dict[str, Bound] = {}
        self._schedules: list[tuple[str, float]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._bind(only)

    def context(self, name: str) -> Context:
        return Context(
            function=name,
            store=self.store,
            clock=self.clock,
            log=get_logger(f"upshift.fn.{name}"),
            fleet=self.fleet,
            clouds=self.clouds,
            settings=self.settings,
        )

    def _bind(self, only: Sequence[str] | None) -> None:
        for name, fdef in self.manifest.functions.items():
            if only is not None and name not in only:
                continue
            fn = resolve_function(name, fdef)
            bound = Bound(name, fn)
            n_event = 0
            for trig in fdef.events:
                if trig.event is not None:
                    # one durable consumer per trigger: name, name_2, name_3 …
                    n_event += 1
                    self._check_model(name, fn, trig.event.type)
                    consumer = name if n_event == 1 else f"{name}_{n_event}"
                    metrics.name_consumer(consumer, name)  # the bus's retries count for the function
                    self.bus.subscribe(
                        Subscription(
                            name=consumer,
                            type=trig.event.type,
                            where=trig.event.where,
                            handler=self._event_handler(name, fn),
                            max_attempts=trig.event.max_attempts,
                            concurrency=trig.event.concurrency,
                        )
                    )
                elif trig.schedule is not None:
                    self._check_model(name, fn, T.CLOCK_TICK)
                    self._schedules.append((name, trig.every_seconds or 60.0))
                    self.bus.subscribe(
                        Subscription(
                            name,
                            T.CLOCK_TICK,
                            {"subject": name},
                            self._event_handler(name, fn),
                            max_attempts=3,
                        )
                    )
                elif trig.http is not None:
                    bound.http.append((trig.http.method.upper(), trig.http.path))
            self.functions[name] = bound

    @staticmethod
    def _check_model(name: str, fn: UpshiftFunction, event_type: str) -> None:
        from events.catalog import CATALOG

        want = CATALOG[event_type].model
        if fn.data_model is not None and fn.data_model is not want:
            raise ConfigError(
                f"functions.{name}.events",
                f"{fn.name} takes Event[{fn.data_model.__name__}] but {event_type} carries {want.__name__}",
            )

    def _event_handler(self, name: str, fn: UpshiftFunction) -> Handler:
        async def handle(event: Event[Any]) -> Sequence[Emitted]:
            with metrics.delivery(name):  # ok, or error when it raises (the bus retries it)
                out = await fn(event, self.context(name))
            if isinstance(out, HttpReply):
                raise TypeError(f"event function {name} must not return HttpReply")
            return list(out or ())

        return handle

    async def call_http(self, name: str, request: HttpRequest) -> HttpReply:
        """Run an http function, publish what it emits, then return its reply."""
        fn = self.functions[name].function
        reply = await fn(request, self.context(name))
        if not isinstance(reply, HttpReply):
            raise TypeError(f"http function {name} must return HttpReply")
        await publish_all(self.bus, reply.events)
        return reply

    # -- running -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        await self.bus.start()
        self._tasks.append(asyncio.create_task(self.bus.run(), name="bus"))
        for name, every in self._schedules:
            self._tasks.append(asyncio.create_task(self._tick(name, every), name=f"tick-{name}"))

    async def _tick(self, name: str, every: float) -> None:
        """Publish one tick per period (in domain time); the id dedupes ticks across runtimes."""
        while True:
            now = self.clock.timestamp()
            slot = math.floor(now / every) * every
            at = datetime.fromtimestamp(slot, UTC)
            tick = consequence(T.CLOCK_TICK, Tick(at=at), key=("tick", name, slot), subject=name)
            try:
                await self.bus.publish(tick)
            except Exception as exc:  # a bus hiccup skips one tick; the next period publishes again
                get_logger("upshift.runtime").warning(
                    "tick not published", function=name, error=f"{type(exc).__name__}: {exc}"
                )
            next_slot = slot + every
            await asyncio.sleep(max(0.01, self.clock.real_delay(next_slot - self.clock.timestamp())))

    async def stop(self) -> None:
        for t in self._tasks:
            if t.get_name() != "bus":
                t.cancel()
        await self.bus.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.store.close()
        if self.clouds is not None:
            await self.clouds.close()
        # the feed poller and notify use the loop's shared HTTP session without any cloud client
        await close_sessions()

    async def wait_idle(self, limit: float = 30.0) -> None:
        """Until the bus has no pending deliveries (embedded bus only; tests and demo)."""
        bus = self.bus
        if not isinstance(bus, _Drains):
            raise NotImplementedError("wait_idle needs a bus with pending()")
        deadline = time.monotonic() + limit
        while await bus.pending():
            if time.monotonic() > deadline:
                raise TimeoutError("bus did not drain")
            await asyncio.sleep(0.02)
