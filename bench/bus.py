"""Bus throughput in the pipeline's shapes, ours against bare libraries and FastStream, one run.

    python -m bench.bus [--n 5000] [--repeat 2] [--only sqlite|nats] [--profile sqlite|nats]

Three shapes (see :mod:`bench._bus_common`): ``publish`` (64 publishes in flight),
``consume_emit`` (a pre-published backlog, a handler emitting one event per input: consume →
emit → ack) and ``both`` (the two at once), for five variants in the same run: our SQLite bus
and bare ``sqlite3``; our NATS bus, bare nats-py and FastStream's JetStream pull subscriber
(see :mod:`bench._bus_baselines`), against one real nats-server on a free loopback port with a
temporary store. Goals on ``consume_emit``: NATS bus ≥ 0.5× bare nats-py and ≥ 1.2× FastStream,
SQLite bus ≥ 0.6× bare sqlite3.

Prints a table (events/s, and each of ours over its baselines); the last line is one JSON object
``{"n", "sqlite": {"publish", "consume_emit", "both"}, "bare_sqlite": {…}, "nats": {…},
"bare_nats": {…}, "faststream": {…}}`` (events/s, each the best of ``--repeat`` interleaved
rounds). ``--only sqlite`` (or ``nats``) runs that backend's variants alone, ours and its
baselines, and the JSON object then holds those keys only. ``--profile`` instead runs our bus's ``consume_emit`` under cProfile and prints where the
time goes (the top functions by own and by cumulative time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import nats

from bench._bus_baselines import bare_nats, bare_sqlite, faststream
from bench._bus_common import (
    CONCURRENCY,
    IN_FLIGHT,
    emit_one,
    in_flight,
    inputs,
    wait_drained_nats,
    wait_drained_sqlite,
)
from events import T
from shared.bus import Bus, Subscription, open_bus

__all__ = ["GOALS", "main", "ours"]

SHAPES = ("publish", "consume_emit", "both")
#: (ours, baseline, shape, at least): the issue's goals.
GOALS = (
    ("nats", "bare_nats", "consume_emit", 0.5),
    ("nats", "faststream", "consume_emit", 1.2),
    ("sqlite", "bare_sqlite", "consume_emit", 0.6),
)

Drained = Callable[[], Awaitable[float]]


def _bus(url: str) -> Bus:
    bus = open_bus(url)
    bus.subscribe(Subscription("bench", T.ECHO, {"stage": "in"}, emit_one, concurrency=CONCURRENCY))
    return bus


async def _publish(bus: Bus, n: int) -> None:
    await in_flight(IN_FLIGHT, inputs(n), bus.publish)


async def _run(bus: Bus) -> asyncio.Task[None]:
    return asyncio.create_task(bus.run())


async def _close(bus: Bus, runner: asyncio.Task[None]) -> None:
    await bus.close()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def ours(url_ab: str, url_c: str, drained: Callable[[str], Drained], n: int) -> dict[str, float]:
    """The three shapes through our bus: ``url_ab`` for publish then consume_emit, ``url_c`` for both;
    ``drained(url)`` waits until that bus has nothing unacknowledged."""
    out: dict[str, float] = {}
    bus = _bus(url_ab)
    await bus.start()  # the consumer exists before the backlog is published
    t0 = time.perf_counter()
    await _publish(bus, n)
    out["publish"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    runner = await _run(bus)
    out["consume_emit"] = n / (await drained(url_ab)() - t0)
    await _close(bus, runner)

    bus = _bus(url_c)
    await bus.start()
    t0 = time.perf_counter()
    runner = await _run(bus)
    await _publish(bus, n)
    out["both"] = n / (await drained(url_c)() - t0)
    await _close(bus, runner)
    return out


def _sqlite_drained(url: str) -> Drained:
    path = url.removeprefix("sqlite:///")
    return lambda: wait_drained_sqlite(path, "SELECT COUNT(*) FROM bus_deliveries")


def _nats_drained(server_url: str) -> Callable[[str], Drained]:
    def for_url(url: str) -> Drained:
        namespace = url.split("namespace=")[1]

        async def wait() -> float:
            nc = await nats.connect(server_url)
            try:
                return await wait_drained_nats(nc.jetstream(), namespace.upper(), "bench")
            finally:
                await nc.close()

        return wait

    return for_url


def _ns() -> str:
    return "bench" + uuid.uuid4().hex[:8]


async def _once(server_url: str | None, n: int, sqlite: bool = True) -> dict[str, dict[str, float]]:
    """Every variant once, in a fixed order: the SQLite ones (unless not ``sqlite``), then the
    NATS ones on ``server_url`` (none without it)."""
    out: dict[str, dict[str, float]] = {}
    if sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            out["bare_sqlite"] = await bare_sqlite(tmp, n)
            out["sqlite"] = await ours(
                f"sqlite:///{tmp}/ours-ab.db", f"sqlite:///{tmp}/ours-c.db", _sqlite_drained, n
            )
    if server_url is None:
        return out
    out["bare_nats"] = await bare_nats(server_url, n)
    out["nats"] = await ours(
        f"{server_url}?namespace={_ns()}", f"{server_url}?namespace={_ns()}", _nats_drained(server_url), n
    )
    out["faststream"] = await faststream(server_url, n)
    return out


async def main(n: int, repeat: int = 1, only: str | None = None) -> dict[str, Any]:
    """``repeat`` rounds of every variant (of backend ``only``, when given), interleaved; each
    figure is its best round (on a shared machine the slow rounds measure the neighbours, not the
    code)."""
    from simulator.natsd import NatsServer

    best: dict[str, dict[str, float]] = {}
    server = NatsServer.start() if only != "sqlite" else None
    try:
        for _ in range(repeat):
            url = None if server is None else server.url
            for variant, figures in (await _once(url, n, sqlite=only != "nats")).items():
                for shape, eps in figures.items():
                    best.setdefault(variant, {})[shape] = max(eps, best.get(variant, {}).get(shape, 0.0))
    finally:
        if server is not None:
            server.stop()
    result: dict[str, Any] = {"n": n}
    for key in ("sqlite", "bare_sqlite", "nats", "bare_nats", "faststream"):
        if key not in best:
            continue
        result[key] = {shape: round(best[key][shape], 1) for shape in SHAPES}
    return result


_LABELS = {
    "sqlite": "sqlite bus",
    "bare_sqlite": "bare sqlite3",
    "nats": "nats bus",
    "bare_nats": "bare nats-py",
    "faststream": "faststream",
}


def table(result: dict[str, Any]) -> str:
    """The figures as text: events/s per shape, then each of ours over each of its baselines (the
    variants ``result`` holds)."""
    lines = [
        f"n = {result['n']} events per shape; events/s",
        f"{'':26}" + "".join(f"{s:>14}" for s in SHAPES),
    ]
    for key in ("sqlite", "bare_sqlite", "nats", "bare_nats", "faststream"):
        if key in result:
            lines.append(f"{_LABELS[key]:26}" + "".join(f"{result[key][s]:14,.0f}" for s in SHAPES))
    lines.append("")
    for mine, base in (("sqlite", "bare_sqlite"), ("nats", "bare_nats"), ("nats", "faststream")):
        if mine not in result:
            continue
        label = f"{_LABELS[mine]} / {_LABELS[base]}"
        lines.append(f"{label:26}" + "".join(f"{result[mine][s] / result[base][s]:13.2f}x" for s in SHAPES))
    lines.append("")
    for mine, base, shape, floor in GOALS:
        if mine not in result:
            continue
        ratio = result[mine][shape] / result[base][shape]
        verdict = "met" if ratio >= floor else "MISSED"
        lines.append(f"goal {_LABELS[mine]} >= {floor}x {_LABELS[base]} on {shape}: {ratio:.2f}x, {verdict}")
    return "\n".join(lines)


async def profile(backend: str, n: int, top: int = 25) -> str:
    """Our bus's consume_emit under cProfile: the functions with the most own and the most
    cumulative time, and their share."""
    from simulator.natsd import NatsServer

    server = NatsServer.start() if backend == "nats" else None
    with tempfile.TemporaryDirectory() as tmp:
        if server is None:
            url, drained = f"sqlite:///{tmp}/prof.db", _sqlite_drained(f"sqlite:///{tmp}/prof.db")
        else:
            url = f"{server.url}?namespace={_ns()}"
            drained = _nats_drained(server.url)(url)
        try:
            bus = _bus(url)
            await bus.start()
            await _publish(bus, n)
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            runner = await _run(bus)
            end = await drained()
            prof.disable()
            await _close(bus, runner)
        finally:
            if server is not None:
                server.stop()
    stats = pstats.Stats(prof)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    lines = [
        f"{backend} bus consume_emit under cProfile: {n / (end - t0):,.0f} events/s (profiled);"
        f" the top {top} functions by own time, then by cumulative time, each's share of all profiled time",
    ]
    for column in (2, 3):  # pstats rows: (cc, calls, own, cumulative, callers)
        rows = sorted(stats.stats.items(), key=lambda kv: kv[1][column], reverse=True)[:top]  # type: ignore[attr-defined]
        lines.append("-- by own time" if column == 2 else "-- by cumulative time")
        for (file, line, func), (_cc, calls, tottime, cumtime, _callers) in rows:
            where = f"{file.split('site-packages/')[-1].split('/work/main/')[-1]}:{line}({func})"
            share = (tottime if column == 2 else cumtime) / total
            lines.append(f"{share:6.1%}  {tottime:7.3f}s own {cumtime:7.3f}s cum {calls:8d} calls  {where}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="events per shape and variant")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; each figure is its best round")
    parser.add_argument("--only", choices=("sqlite", "nats"), help="that backend's variants alone")
    parser.add_argument(
        "--profile", choices=("sqlite", "nats"), help="profile our bus's consume_emit instead"
    )
    args = parser.parse_args()
    if args.profile:
        print(asyncio.run(profile(args.profile, args.n)))
    else:
        load = os.getloadavg()[0]
        res = asyncio.run(main(args.n, args.repeat, args.only))
        print(f"best of {args.repeat} rounds; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
        print(table(res))
        print(json.dumps(res))
