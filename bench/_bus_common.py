"""What every variant of ``bench.bus`` shares: the inputs, the handler's work, the in-flight
window, and the "drained" waits that end a consume measurement.

Contract: each variant measures three shapes on ``n`` inputs and returns events/s for each:

* ``publish`` — ``n`` inputs published with :data:`IN_FLIGHT` publishes in flight, each durable
  before it counts (into a stream/file whose consumer already exists, so the next shape has its
  backlog);
* ``consume_emit`` — that backlog consumed by a handler that emits one event per input, the
  output durable before the input is acknowledged; timed until nothing is pending or unacked;
* ``both`` — a fresh ``n`` published (as in ``publish``) while the consumer runs; timed from the
  first publish until the last input is acknowledged (``n`` / seconds).

Inputs are ``dev.upshift.echo`` events with ``stage=in``; outputs carry ``stage=out``, so the
consumer (filtered on ``stage=in``) never receives its own outputs. The bare baselines read and
write the same JSON bytes with the standard library's ``json``; ours and FastStream's handler
parse and build typed events (:func:`emit_one`), which is what an Upshift function gets.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from events import Event, T
from events.catalog import Echo

__all__ = [
    "CONCURRENCY",
    "IN_FLIGHT",
    "bare_output",
    "emit_one",
    "in_flight",
    "inputs",
    "wait_drained_nats",
    "wait_drained_sqlite",
]

#: Publishes in flight in the publish shapes.
IN_FLIGHT = 64
#: Handlers in flight (our buses' Subscription.concurrency), fetch batch (NATS), commit group (bare SQLite).
CONCURRENCY = 256
#: How often a drain wait looks (the measurement's resolution; runs last seconds).
_POLL = 0.01
#: A drain wait gives up (TimeoutError) after this many seconds: a stuck variant fails, not hangs.
_DRAIN_LIMIT = 600.0


def inputs(n: int) -> list[Event[Any]]:
    return [Event(type=T.ECHO, data=Echo(message=f"m{i}"), stage="in") for i in range(n)]


async def emit_one(event: Event[Any]) -> list[Event[Any]]:
    """The handler of our buses (and, around our codec, of FastStream's): one output per input,
    with a deterministic id, as a pipeline function emits its consequence."""
    return [event.follow(T.ECHO, Echo(message=event.data.message, reply=False), stage="out")]


def bare_output(raw: bytes | str) -> tuple[str, str]:
    """The bare baselines' handler: the output's id and JSON, with nothing but ``json``."""
    obj = json.loads(raw)
    out = dict(obj, id=obj["id"] + ".out", stage="out", data=dict(obj["data"], reply=False))
    return out["id"], json.dumps(out, separators=(",", ":"))


async def in_flight(window: int, items: Iterable[Any], call: Callable[[Any], Awaitable[object]]) -> None:
    """``await call(item)`` for every item, ``window`` of them at a time."""
    it = iter(items)

    async def worker() -> None:
        for item in it:  # one shared iterator: each item is taken by exactly one worker
            await call(item)

    await asyncio.gather(*(worker() for _ in range(window)))


async def wait_drained_sqlite(path: str, count_sql: str) -> float:
    """Wait until ``count_sql`` (read on a connection of its own) answers 0; the monotonic time then."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        deadline = time.perf_counter() + _DRAIN_LIMIT
        while conn.execute(count_sql).fetchone()[0]:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{path}: not drained in {_DRAIN_LIMIT}s")
            await asyncio.sleep(_POLL)
        return time.perf_counter()
    finally:
        conn.close()


async def wait_drained_nats(js: Any, stream: str, durable: str) -> float:
    """Wait until the consumer has nothing pending and nothing unacknowledged; the time then."""
    deadline = time.perf_counter() + _DRAIN_LIMIT
    while True:
        info = await js.consumer_info(stream, durable)
        if not (info.num_pending or info.num_ack_pending):
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{stream}/{durable}: not drained in {_DRAIN_LIMIT}s")
        await asyncio.sleep(_POLL)
