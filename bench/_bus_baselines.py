"""The baselines of ``bench.bus``: bare ``sqlite3``, bare nats-py, and FastStream, each measuring
the three shapes of :mod:`bench._bus_common` (``publish``, ``consume_emit``, ``both``; events/s).

* :func:`bare_sqlite` — a WAL file (``synchronous=NORMAL``, as our bus), a ``queue`` and an
  ``outbox`` table. Publish: one ``INSERT OR IGNORE`` (dedupe by id) per commit, as our bus
  commits each publish. Consume: read up to :data:`CONCURRENCY` rows, then one transaction
  inserting each input's output and deleting the inputs — the group commit our bus makes.
* :func:`bare_nats` — publish pipelined (``publish_async``, :data:`IN_FLIGHT` pending, with
  ``Nats-Msg-Id``); consume: pull fetch 256, publish each input's output, await those acks with
  the whole batch in flight, then ack the inputs.
* :func:`faststream` — FastStream's JetStream pull subscriber (``PullSub(batch_size=256)``, which
  runs a fetched batch's handlers concurrently) with our handler around our codec, its output
  published through ``broker.publish(..., stream=...)`` (awaiting the ack) before FastStream acks
  the input; publish is ``broker.publish`` with :data:`IN_FLIGHT` in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from bench._bus_common import (
    CONCURRENCY,
    IN_FLIGHT,
    bare_output,
    emit_one,
    in_flight,
    inputs,
    wait_drained_nats,
    wait_drained_sqlite,
)
from events.codec import from_json, to_json

__all__ = ["bare_nats", "bare_sqlite", "faststream"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, body TEXT NOT NULL);
"""
_QUEUE_LEFT = "SELECT COUNT(*) FROM queue"


def _wire(n: int) -> list[dict[str, Any]]:
    """The inputs as plain dicts (a bare producer serialises its own dicts)."""
    return [e.to_wire() for e in inputs(n)]


# -- bare sqlite3 ------------------------------------------------------------------------------


def _sqlite(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    return conn


async def _sqlite_publish(conn: sqlite3.Connection, n: int) -> None:
    async def one(obj: dict[str, Any]) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO queue(id, body) VALUES (?,?)",
            (obj["id"], json.dumps(obj, separators=(",", ":"))),
        )

    await in_flight(IN_FLIGHT, _wire(n), one)


async def _sqlite_consume(conn: sqlite3.Connection, stop: asyncio.Event) -> None:
    while not stop.is_set():
        rows = conn.execute("SELECT seq, body FROM queue ORDER BY seq LIMIT ?", (CONCURRENCY,)).fetchall()
        if not rows:
            await asyncio.sleep(0.001)
            continue
        outputs = [bare_output(body) for _, body in rows]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR IGNORE INTO outbox(id, body) VALUES (?,?)", outputs)
        conn.executemany("DELETE FROM queue WHERE seq = ?", [(seq,) for seq, _ in rows])
        conn.execute("COMMIT")
        await asyncio.sleep(0)  # let the publisher (shape "both") have its turn


async def bare_sqlite(tmp: str, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    path = f"{tmp}/bare-ab.db"
    conn = _sqlite(path)
    t0 = time.perf_counter()
    await _sqlite_publish(conn, n)
    out["publish"] = n / (time.perf_counter() - t0)
    stop = asyncio.Event()
    t0 = time.perf_counter()
    consumer = asyncio.create_task(_sqlite_consume(conn, stop))
    out["consume_emit"] = n / (await wait_drained_sqlite(path, _QUEUE_LEFT) - t0)
    stop.set()
    await consumer
    conn.close()

    path = f"{tmp}/bare-c.db"
    conn = _sqlite(path)
    stop = asyncio.Event()
    t0 = time.perf_counter()
    consumer = asyncio.create_task(_sqlite_consume(conn, stop))
    await _sqlite_publish(conn, n)
    out["both"] = n / (await wait_drained_sqlite(path, _QUEUE_LEFT) - t0)
    stop.set()
    await consumer
    conn.close()
    return out


# -- bare nats-py ------------------------------------------------------------------------------


async def _nats_stream(js: Any, tag: str) -> tuple[str, str]:
    """A stream ``<TAG>`` on ``<tag>.>`` and a durable ``bench`` on ``<tag>.in``."""
    prefix = f"{tag}{uuid.uuid4().hex[:8]}"
    stream = prefix.upper()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.>"]))
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name="bench",
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=f"{prefix}.in",
            max_ack_pending=max(1000, CONCURRENCY * 4),  # as our bus sets it
        ),
    )
    return prefix, stream


async def _nats_publish(nc: Any, prefix: str, n: int) -> None:
    js = nc.jetstream(publish_async_max_pending=IN_FLIGHT)
    futures = []
    for obj in _wire(n):
        body = json.dumps(obj, separators=(",", ":")).encode()
        futures.append(await js.publish_async(f"{prefix}.in", body, headers={"Nats-Msg-Id": obj["id"]}))
    await asyncio.gather(*futures)


async def _nats_consume(nc: Any, prefix: str, stream: str) -> None:
    js = nc.jetstream()
    psub = await js.pull_subscribe_bind("bench", stream=stream)
    try:
        while True:
            try:
                msgs = await psub.fetch(CONCURRENCY, timeout=1)
            except nats.errors.TimeoutError:
                continue
            futures = []
            for m in msgs:
                out_id, body = bare_output(m.data)
                futures.append(
                    await js.publish_async(f"{prefix}.out", body.encode(), headers={"Nats-Msg-Id": out_id})
                )
            await asyncio.gather(*futures)
            for m in msgs:
                await m.ack()
    finally:
        with contextlib.suppress(Exception):
            await psub.unsubscribe()


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def bare_nats(url: str, n: int) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    out: dict[str, float] = {}
    try:
        prefix, stream = await _nats_stream(js, "bareab")
        t0 = time.perf_counter()
        await _nats_publish(nc, prefix, n)
        out["publish"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        consumer = asyncio.create_task(_nats_consume(nc, prefix, stream))
        out["consume_emit"] = n / (await wait_drained_nats(js, stream, "bench") - t0)
        await _stop(consumer)
        await js.delete_stream(stream)

        prefix, stream = await _nats_stream(js, "barec")
        t0 = time.perf_counter()
        consumer = asyncio.create_task(_nats_consume(nc, prefix, stream))
        await _nats_publish(nc, prefix, n)
        out["both"] = n / (await wait_drained_nats(js, stream, "bench") - t0)
        await _stop(consumer)
        await js.delete_stream(stream)
    finally:
        await nc.close()
    return out


# -- FastStream --------------------------------------------------------------------------------


def _fs_broker(url: str, prefix: str, stream: str) -> Any:
    """A broker whose pull subscriber runs our handler on ``<prefix>.in``, emitting to ``.out``."""
    from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub

    broker = NatsBroker(url, logger=None)

    @broker.subscriber(
        f"{prefix}.in",
        stream=JStream(name=stream, declare=False),
        durable="bench",
        pull_sub=PullSub(batch_size=CONCURRENCY),
    )
    async def handle(msg: NatsMessage) -> None:
        event = from_json(msg.body)
        for output in await emit_one(event):
            await broker.publish(
                to_json(output).encode(), f"{prefix}.out", headers={"Nats-Msg-Id": output.id}, stream=stream
            )

    return broker


async def _fs_publish(broker: Any, prefix: str, stream: str, n: int) -> None:
    async def one(event: Any) -> None:
        await broker.publish(
            to_json(event).encode(), f"{prefix}.in", headers={"Nats-Msg-Id": event.id}, stream=stream
        )

    await in_flight(IN_FLIGHT, inputs(n), one)


async def faststream(url: str, n: int) -> dict[str, float]:
    nc = await nats.connect(url)  # setup and the drain waits; FastStream does the work
    js = nc.jetstream()
    out: dict[str, float] = {}
    try:
        prefix, stream = await _nats_stream(js, "fsab")
        broker = _fs_broker(url, prefix, stream)
        await broker.connect()
        t0 = time.perf_counter()
        await _fs_publish(broker, prefix, stream, n)
        out["publish"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        await broker.start()
        out["consume_emit"] = n / (await wait_drained_nats(js, stream, "bench") - t0)
        await broker.stop()
        await js.delete_stream(stream)

        prefix, stream = await _nats_stream(js, "fsc")
        broker = _fs_broker(url, prefix, stream)
        await broker.connect()
        t0 = time.perf_counter()
        await broker.start()
        await _fs_publish(broker, prefix, stream, n)
        out["both"] = n / (await wait_drained_nats(js, stream, "bench") - t0)
        await broker.stop()
        await js.delete_stream(stream)
    finally:
        await nc.close()
    return out
