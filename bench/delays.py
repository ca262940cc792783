"""How late a delayed event arrives: the NATS bus (the server's message schedules) and the SQLite bus.

    python -m bench.delays [--n 40]

Every ``track_job`` look and every ``wave.ready`` is a delayed event, so their lateness adds to
the delay before a finished job is noticed (``bench.rollout``'s notice figures, where at speed
200 a tenth of a real second is 20 domain seconds). Each bus gets ``--n`` events published with
delays spread over 0.3–1.5 s, consumed by one subscription; the figure is arrival minus due (real
seconds: min, median, p95, max). A real ``nats-server`` on a free loopback port, a SQLite file in
a temporary directory. Last line: ``{"n", "nats": {"min", "median", "p95", "max"}, "sqlite": {…}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._realised import pct
from events import Event, T
from events.catalog import Echo
from shared.bus import Subscription, open_bus
from simulator.natsd import NatsServer

__all__ = ["main"]


async def _lateness(url: str, n: int) -> dict[str, float]:
    bus = open_bus(url)
    arrived: dict[str, float] = {}
    all_in = asyncio.Event()

    async def handler(event: Event[Any]) -> list[Any]:
        arrived[event.data.message] = time.time()
        if len(arrived) == n:
            all_in.set()
        return []

    bus.subscribe(Subscription("delays", T.ECHO, {}, handler))
    await bus.start()
    task = asyncio.create_task(bus.run())
    try:
        due: dict[str, float] = {}
        for i in range(n):
            delay = 0.3 + (i % 10) * 0.137
            due[str(i)] = time.time() + delay
            await bus.publish(Event(type=T.ECHO, data=Echo(message=str(i), reply=False)), delay=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 30)
    finally:
        await bus.close()
        task.cancel()
    late = sorted(arrived[k] - due[k] for k in arrived)
    if len(late) < n:
        raise SystemExit(f"{url}: {n - len(late)} delayed events never arrived")
    return {
        "min": round(late[0], 4),
        "median": round(statistics.median(late), 4),
        "p95": round(pct(late, 0.95) or 0.0, 4),
        "max": round(late[-1], 4),
    }


async def main(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="upshift-bench-delays-") as tmp:
        server = NatsServer.start(log=str(Path(tmp) / "nats-server.log"))
        try:
            nats = await _lateness(f"{server.url}?namespace=delays", n)
        finally:
            server.stop()
        sqlite = await _lateness(f"sqlite:///{tmp}/delays.db", n)
    return {"n": n, "nats": nats, "sqlite": sqlite}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    res = asyncio.run(main(parser.parse_args().n))
    for bus in ("nats", "sqlite"):
        f = res[bus]
        print(
            f"{bus:>7} late by  min {f['min']:.3f}  median {f['median']:.3f}  p95 {f['p95']:.3f}  max {f['max']:.3f} s"
        )
    print(json.dumps(res))
