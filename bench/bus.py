"""Bus throughput: events/s through publish → handle (no-op) → ack, per backend.

    python -m bench.bus [--n 20000]

Measures, in one run: the embedded SQLite bus, the NATS JetStream bus, and a bare nats-py
JetStream loop (publish awaiting each ack, pull-fetch in batches, ack) against the same
nats-server — the baseline the NATS backend is judged by (budget: ≥ 0.5×). The SQLite budget
is ≥ 5,000 events/s. The producer publishes one event at a time, awaiting durability, while
the consumer runs concurrently: what a live pipeline does. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from events import Event, T
from events.catalog import Echo
from shared.bus import Subscription, open_bus
from simulator.natsd import NatsServer


def _events(n: int) -> list[Event]:
    return [Event(type=T.ECHO, data=Echo(message=f"m{i}")) for i in range(n)]


async def through_bus(url: str, n: int) -> float:
    """Events/s for ``n`` events through one Bus with a no-op handler."""
    bus = open_bus(url)
    done = asyncio.Event()
    seen = 0

    async def noop(event):
        nonlocal seen
        seen += 1
        if seen >= n:
            done.set()
        return ()

    bus.subscribe(Subscription("bench", T.ECHO, {}, noop, concurrency=256))
    await bus.start()
    events = _events(n)
    runner = asyncio.create_task(bus.run())
    t0 = time.perf_counter()
    for e in events:
        await bus.publish(e)
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - t0
    await bus.close()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    return n / elapsed


async def bare_nats(url: str, n: int) -> float:
    """The same shape with nothing but nats-py: publish (await ack) / fetch / ack."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    stream = "BARE" + uuid.uuid4().hex[:8].upper()
    subject = f"{stream.lower()}.echo"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"]))
    await js.add_consumer(
        stream, ConsumerConfig(durable_name="bench", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=10_000)
    )
    psub = await js.pull_subscribe_bind("bench", stream=stream)
    payloads = [json.dumps(e.to_wire()).encode() for e in _events(n)]
    got = 0

    async def consume():
        nonlocal got
        while got < n:
            try:
                msgs = await psub.fetch(256, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for m in msgs:
                json.loads(m.data)  # a consumer reads what it is given
                await m.ack()
                got += 1

    consumer = asyncio.create_task(consume())
    t0 = time.perf_counter()
    for i, p in enumerate(payloads):
        await js.publish(subject, p, headers={"Nats-Msg-Id": str(i)})
    await asyncio.wait_for(consumer, timeout=600)
    elapsed = time.perf_counter() - t0
    await js.delete_stream(stream)
    await nc.close()
    return n / elapsed


async def main(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_eps = await through_bus(f"sqlite:///{tmp}/bench.db", n)
    print(f"sqlite bus      {sqlite_eps:10,.0f} events/s   (budget >= 5,000: {sqlite_eps / 5000:.2f}x)")
    server = NatsServer.start()
    try:
        bare_eps = await bare_nats(server.url, n)
        print(f"bare nats-py    {bare_eps:10,.0f} events/s   (baseline)")
        nats_eps = await through_bus(f"{server.url}?namespace=bench{uuid.uuid4().hex[:6]}", n)
        print(
            f"nats bus        {nats_eps:10,.0f} events/s   ({nats_eps / bare_eps:.2f}x bare; budget >= 0.50x)"
        )
    finally:
        server.stop()
    return {
        "n": n,
        "sqlite_eps": round(sqlite_eps, 1),
        "nats_eps": round(nats_eps, 1),
        "bare_nats_eps": round(bare_eps, 1),
        "nats_ratio": round(nats_eps / bare_eps, 3),
        "sqlite_budget_ratio": round(sqlite_eps / 5000, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="events per backend")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.n))))
