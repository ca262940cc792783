"""How the NATS bus settles a delivery when the bus, a lease or the process's own close gets in
the way, and how its lease keeper stops and complains (a real nats-server throughout):

* a handler that returned, whose output could not be published (the server was down), has only
  its publishing retried in place: it is not run a second time;
* a failure is counted by the newest delivery's attempt: a redelivery that reached the process
  still handling it (its lease lapsed) counts, so the last attempt dead-letters at once;
* a redelivery of a message this process still handles, arriving while it closes, is kept and
  settled here, not nak'ed to another worker that would run it a second time;
* the lease keeper's thread, stopped and needed again, is a new one with its own stop flag (the
  old one, should it outlive stop()'s join, still stops), and renewals failing for longer than
  an ack_wait are logged at warning once per ack_wait, not every round.

The redeliveries are the server's own: a lease left to lapse (the lease keeper takes the loop for
frozen) or a nak, never a message made up by the test.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import AsyncIterator
from itertools import pairwise
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import (
    ConnectionClosedError,
    ConnectionReconnectingError,
    NoRespondersError,
    OutboundBufferLimitError,
    StaleConnectionError,
)
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerInfo

from events import Event, T
from events.catalog import Echo
from shared.bus import Subscription
from shared.bus.nats import NatsBus
from shared.bus.pulling import LeaseKeeper
from simulator.natsd import NatsServer, free_port
from tests.helpers import echo, eventually

Running = tuple[NatsBus, "asyncio.Task[None]"]

#: What a publish meets while the server is down (the bus's own "unavailable" kinds).
_OUTAGE_ERRORS = (
    NatsTimeout,
    NoRespondersError,
    ConnectionClosedError,
    ConnectionReconnectingError,
    StaleConnectionError,
    OutboundBufferLimitError,
)


@pytest.fixture
async def buses() -> AsyncIterator[list[Running]]:
    """Buses started by the test (with :func:`_running`), closed after it."""
    made: list[Running] = []
    yield made
    for bus, task in made:
        await bus.close()
        await asyncio.wait_for(task, 10)


async def _running(
    url: str, namespace: str, made: list[Running], ack_wait: float, *subs: Subscription
) -> NatsBus:
    bus = NatsBus(url, namespace=namespace, ack_wait=ack_wait)
    for sub in subs:
        bus.subscribe(sub)
    await bus.start()
    made.append((bus, asyncio.create_task(bus.run())))
    return bus


async def _settled(bus: NatsBus, consumer: str, timeout: float = 30.0) -> ConsumerInfo:
    """The consumer's info once nothing is pending nor unacknowledged (AssertionError after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        info = await bus.js.consumer_info(bus.stream, bus.durable_for(consumer))
        if not (info.num_pending or info.num_ack_pending):
            return info
        if loop.time() > deadline:
            raise AssertionError(f"{consumer}: not settled in {timeout} s: {info}")
        await asyncio.sleep(0.05)


async def _delivered(bus: NatsBus, consumer: str, count: int, timeout: float = 30.0) -> None:
    """Until the consumer has sent ``count`` deliveries in all (AssertionError after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        info = await bus.js.consumer_info(bus.stream, bus.durable_for(consumer))
        if info.delivered is not None and (info.delivered.consumer_seq or 0) >= count:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{consumer}: {count} deliveries not made in {timeout} s: {info}")
        await asyncio.sleep(0.05)


def _inbound(message: str) -> Event:
    return echo(message).model_copy(update={"subject": "in"})


def _output(event: Event) -> Event:
    return event.follow(T.ECHO, Echo(message="done", reply=False)).model_copy(update={"subject": "out"})


def _only_held(bus: NatsBus) -> list[Msg]:
    """The box holding the newest delivery of the one message ``bus`` is handling."""
    [box] = bus._held.values()
    return box


# -- 1. a returned handler's publishing is retried in place, the handler is not run again --------


async def test_a_returned_handler_is_not_run_again_when_its_output_meets_an_outage(
    own_nats_server: NatsServer, namespace: str, buses: list[Running]
) -> None:
    """The server is killed while the handler runs; the handler returns its output, whose
    publish then fails (no ack: the bus is away) and is retried in place until the server is
    back. The handler ran once, its output is stored and delivered once, and the input is acked
    (before the fix the whole handler was run again for every failed publish)."""
    srv = own_nats_server
    runs: list[str] = []
    outputs: list[Event] = []
    returning = asyncio.Event()

    async def handler(event: Event) -> list[Event]:
        runs.append(event.id)
        await returning.wait()
        return [_output(event)]

    async def sink(event: Event) -> None:
        outputs.append(event)

    bus = await _running(
        srv.url,
        namespace,
        buses,
        30.0,  # a lease that outlasts the outage (a redelivery would not be run again anyway)
        Subscription("worker", T.ECHO, {"subject": "in"}, handler),
        Subscription("sink", T.ECHO, {"subject": "out"}, sink),
    )
    tries: list[BaseException | None] = []  # each publish of the handler's output: its error or None
    real_publish_all = bus._publish_all

    async def recorded(emitted: Any) -> None:
        try:
            await real_publish_all(emitted)
        except BaseException as exc:
            tries.append(exc)
            raise
        tries.append(None)

    bus._publish_all = recorded  # type: ignore[method-assign]
    ev = _inbound("outage")
    await bus.publish(ev)
    await eventually(lambda: runs == [ev.id])
    srv.kill()
    returning.set()
    await eventually(lambda: bool(tries), timeout=60)  # the first publish failed (server down)
    srv.start_again()
    await eventually(lambda: None in tries, timeout=60)
    await eventually(lambda: len(outputs) == 1, timeout=60)
    await _settled(bus, "worker", timeout=60)
    await _settled(bus, "sink", timeout=60)

    assert runs == [ev.id]  # the handler ran once
    *failed, ok = tries
    assert ok is None and failed, tries
    assert all(isinstance(exc, _OUTAGE_ERRORS) for exc in failed), failed
    assert [o.id for o in outputs] == [_output(ev).id]
    info = await bus.js.stream_info(bus.stream)
    assert info.state.messages == 2  # the input and its one output
    assert await bus.dead_letters() == []


# -- 2. a failure counts the newest delivery's attempt ------------------------------------------


async def test_a_failure_after_a_redelivery_reached_the_handler_counts_that_delivery(
    nats_server: NatsServer, namespace: str, buses: list[Running]
) -> None:
    """max_attempts=2. The lease is left to lapse (the lease keeper takes the loop for frozen) so
    the server redelivers the message to the process still handling it; then the handler fails.
    That failure is the second attempt, the last: the event is dead-lettered at once with the
    handler's error and the newest delivery's count. (Counted as attempt 1 it was nak'ed instead,
    and the spare delivery then dead-lettered it as "max deliveries reached without an ack".)"""
    runs: list[str] = []
    seen: list[int] = []  # the newest delivery's count as the handler fails
    failing = asyncio.Event()
    bus: NatsBus | None = None

    async def handler(event: Event) -> None:
        runs.append(event.id)
        await failing.wait()
        assert bus is not None
        seen.append(_only_held(bus)[0].metadata.num_delivered)
        raise RuntimeError("boom: the handler failed")

    bus = await _running(
        nats_server.url,
        namespace,
        buses,
        1.0,
        Subscription("failing", T.ECHO, {"subject": "in"}, handler, max_attempts=2),
    )
    bus._leases._frozen_after = -1.0  # never renew: the lease lapses every ack_wait
    ev = _inbound("counted")
    await bus.publish(ev)
    await eventually(lambda: runs == [ev.id])
    box = _only_held(bus)
    await eventually(lambda: box[0].metadata.num_delivered >= 2, timeout=30)  # redelivered to us
    failing.set()
    letters: list[Any] = []
    for _ in range(600):
        letters = await bus.dead_letters()
        if letters:
            break
        await asyncio.sleep(0.05)
    assert [(d.consumer, d.event.id, d.attempts) for d in letters] == [("failing", ev.id, seen[0])]
    assert seen[0] >= 2
    assert "boom: the handler failed" in letters[0].error
    await _settled(bus, "failing")
    assert runs == [ev.id]  # neither the redelivery nor a retry ran it again


# -- 3. closing keeps a redelivery of what it still handles --------------------------------------


async def test_closing_keeps_a_redelivery_of_a_message_it_still_handles(
    nats_server: NatsServer, namespace: str, buses: list[Running]
) -> None:
    """Two workers on one consumer. Worker A runs the handler and starts closing; meanwhile the
    server redelivers the message to A (a nak of A's delivery stands in for a lapsed lease: the
    server redelivers at once, to A's pull request, the only one open). A keeps that delivery
    and renews it; worker B, pulling all along, never gets it; A's handler finishes and acks;
    the message was delivered twice in all, both times to A, and run once. (Before the fix A
    nak'ed it while closing: redelivered at once, to B, which ran it a second time, or back to
    A's own still-open pull request, nak'ed again and so on until max_deliver was spent, the
    message given up while A still ran it; that is what this test met on the unfixed code.)"""
    runs: list[str] = []
    finishing = asyncio.Event()

    async def on_a(event: Event) -> None:
        runs.append("A")
        await finishing.wait()

    async def on_b(event: Event) -> None:
        runs.append("B")

    mine: list[Running] = []  # A is closed by the test itself
    a = await _running(nats_server.url, namespace, mine, 5.0, Subscription("shared", T.ECHO, {}, on_a))
    await a.publish(echo("closing"))
    await eventually(lambda: runs == ["A"])
    box = _only_held(a)
    first = box[0]
    closing = asyncio.create_task(a.close())
    try:
        await eventually(lambda: a._closed.is_set() and not a._loops)  # A pulls no more by itself
        # A's pull request, open while it closes (its loop's last one may still be open too).
        asking = asyncio.create_task(a._pulls["shared"].pull(1, 60.0))
        await first.nak()
        await _delivered(a, "shared", 2)  # the redelivery went out (to A: nobody else asks)

        b = await _running(nats_server.url, namespace, buses, 5.0, Subscription("shared", T.ECHO, {}, on_b))
        b_puller = b._pulls["shared"]
        await eventually(lambda: b_puller._seq >= 2, timeout=30)  # B's first pull request answered
        assert runs == ["A"]  # (nak'ed by A, the redelivery would have been B's to run)
        await eventually(lambda: box[0].metadata.num_delivered == 2, timeout=30)
        assert box[0] is not first and not closing.done()  # A holds the redelivery, still closing

        finishing.set()
        await asyncio.wait_for(closing, 30)
        await asyncio.wait_for(asking, 30)
    finally:
        finishing.set()
        await asyncio.wait_for(closing, 30)
        await asyncio.wait_for(mine[0][1], 10)
    info = await _settled(b, "shared")
    assert runs == ["A"]
    assert info.delivered.consumer_seq == 2  # the delivery and its redelivery, both A's
    assert await b.dead_letters() == []


# -- 4. the lease keeper ---------------------------------------------------------------------


async def test_a_lease_keeper_held_again_after_stop_runs_a_new_thread_with_its_own_flag(
    nats_server: NatsServer,
) -> None:
    """The first thread is stuck in its connect past stop()'s join (10 s); hold() then starts a
    second thread, which renews. Let go, the first thread sees its own stop flag set and ends
    (with one flag shared and cleared by stop(), it renewed forever beside the second)."""
    stuck = threading.Event()
    connects: list[str] = []

    async def connect() -> Client:
        connects.append(threading.current_thread().name)
        if len(connects) == 1:
            stuck.wait()  # blocks the first thread's loop: no timeout of its own can fire
        return await nats.connect(nats_server.url)

    observer = await nats.connect(nats_server.url)
    renewals: list[Msg] = []
    try:
        reply = observer.new_inbox()
        await observer.subscribe(reply, cb=_appender(renewals))
        await observer.flush()
        keeper = LeaseKeeper(connect, every=0.1, frozen_after=600)
        keeper.hold("k", reply)
        first = keeper._thread
        assert first is not None
        await eventually(lambda: len(connects) == 1)
        await asyncio.to_thread(keeper.stop)  # the join gives up after 10 s: the thread lives on
        assert first.is_alive() and keeper._thread is None

        keeper.hold("k", reply)
        second = keeper._thread
        assert second is not None and second is not first
        await eventually(lambda: len(renewals) >= 2, timeout=30)  # the second thread renews
        assert all(m.data == b"+WPI" for m in renewals)

        stuck.set()
        await eventually(lambda: not first.is_alive(), timeout=30)
        assert second.is_alive()
        await asyncio.to_thread(keeper.stop)
        assert not second.is_alive()
    finally:
        stuck.set()
        await observer.close()


async def test_renewals_failing_longer_than_an_ack_wait_warn_once_per_ack_wait(log_buf: io.StringIO) -> None:
    """Renewals every 0.1 s (ack_wait 0.3 s) whose connect meets a closed port: every round fails
    (a debug line each); a warning comes only once the failures span more than an ack_wait
    (3 rounds after the first), and again only after another ack_wait (3 more rounds)."""
    closed = f"nats://127.0.0.1:{free_port()}"

    async def connect() -> Client:
        return await nats.connect(
            closed,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            connect_timeout=1,
            error_cb=_quiet,
        )

    keeper = LeaseKeeper(connect, every=0.1, frozen_after=600)
    keeper.hold("k", "_INBOX.nobody")
    try:
        await eventually(lambda: sum(1 for r in _renewal_lines(log_buf) if r == "warning") >= 3, timeout=60)
    finally:
        await asyncio.to_thread(keeper.stop)
    rounds = _renewal_lines(log_buf)
    warned = [i for i, r in enumerate(rounds) if r == "warning"]
    failures_before = [sum(1 for r in rounds[: i + 1] if r == "debug") for i in warned]
    # the first: 4 failed rounds at least (the first one, then more than 3 × every after it);
    # each next one: 3 more failed rounds at least
    assert failures_before[0] >= 4, rounds
    assert all(b - a >= 3 for a, b in pairwise(failures_before)), rounds
    warning = next(r for r in _records(log_buf) if r["event"].startswith("lease renewals failing"))
    assert warning["held"] == 1 and "NoServersError" in warning["error"]


def _appender(into: list[Msg]) -> Any:
    async def received(msg: Msg) -> None:
        into.append(msg)

    return received


async def _quiet(exc: Exception) -> None:
    """nats-py's default error callback logs a traceback per refused connect."""


def _records(buf: io.StringIO) -> list[dict[str, Any]]:
    out = []
    for line in buf.getvalue().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # (a line being written by the keeper's thread)
    return out


def _renewal_lines(buf: io.StringIO) -> list[str]:
    """The level of every lease keeper line about failed renewals, in order: ``debug`` for each
    failed round, ``warning`` for each warning."""
    return [
        r["level"]
        for r in _records(buf)
        if r.get("event")
        in ("lease renewal failed", "lease renewals failing; held deliveries will be redelivered")
    ]
