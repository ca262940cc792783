"""Leases of the NATS bus: a delivery a live process is handling is never redelivered nor
counted towards dead-lettering, however long its handler keeps the event loop busy.

(bench.rollout on NATS with 1 s leases dead-lettered ``window_clock`` ticks and an
``upgrade.succeeded`` with "max deliveries reached without an ack" while every process lived:
in-progress acks were sent from the event loop, so a handler that held the loop past ack_wait let
its lease lapse, and each redelivery was run again and counted as an attempt.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo

from events import Event, T
from events.catalog import Echo
from shared.bus import Subscription
from shared.bus.nats import NatsBus
from shared.bus.pulling import Puller
from simulator.natsd import NatsServer
from tests.helpers import echo, eventually

ACK_WAIT = 1.0

Running = tuple[NatsBus, "asyncio.Task[None]"]


@pytest.fixture
async def buses(nats_server: NatsServer, namespace: str) -> AsyncIterator[list[Running]]:
    made: list[Running] = []
    yield made
    for bus, task in made:
        await bus.close()
        await asyncio.wait_for(task, 10)


async def _running(url: str, namespace: str, made: list[Running], *subs: Subscription) -> NatsBus:
    """A running bus with ack_wait = ACK_WAIT (the lease the test is about)."""
    bus = NatsBus(url, namespace=namespace, ack_wait=ACK_WAIT)
    for sub in subs:
        bus.subscribe(sub)
    await bus.start()
    made.append((bus, asyncio.create_task(bus.run())))
    return bus


async def _settled(bus: NatsBus, consumer: str) -> ConsumerInfo:
    """The consumer's info once it has nothing pending nor unacknowledged (AssertionError after 15 s)."""
    for _ in range(750):
        info = await bus.js.consumer_info(bus.stream, bus.durable_for(consumer))
        if not (info.num_pending or info.num_ack_pending):
            return info
        await asyncio.sleep(0.02)
    raise AssertionError(f"{consumer}: not settled in 15 s")


def _output(event: Event) -> Event:
    return event.follow(T.ECHO, Echo(message="done", reply=False)).model_copy(update={"subject": "out"})


async def test_a_handler_holding_the_loop_past_ack_wait_keeps_its_lease(
    nats_server: NatsServer, namespace: str, buses: list[Running]
) -> None:
    """The handler blocks the event loop (as a CPU-heavy handler on a loaded machine does) for
    1.5 ack waits, three times: no in-progress ack can leave the loop meanwhile. It runs once, its
    output is delivered once, nothing is redelivered or dead-lettered — with max_attempts=2, three
    lapsed leases would have reached the spare delivery and dead-lettered a live handler's event."""
    runs: list[str] = []
    outputs: list[Event] = []

    async def slow(event: Event) -> list[Event]:
        runs.append(event.id)
        for _ in range(3):
            time.sleep(1.5 * ACK_WAIT)  # the loop is held: only another thread can renew
            await asyncio.sleep(0.05)  # (lets a redelivery, if any, arrive and be run)
        return [_output(event)]

    async def sink(event: Event) -> None:
        outputs.append(event)

    bus = await _running(
        nats_server.url,
        namespace,
        buses,
        Subscription("slow", T.ECHO, {"subject": "in"}, slow, max_attempts=2),
        Subscription("sink", T.ECHO, {"subject": "out"}, sink),
    )
    ev = echo("slow").model_copy(update={"subject": "in"})
    await bus.publish(ev)
    await eventually(lambda: len(outputs) == 1, timeout=30)
    info = await _settled(bus, "slow")
    assert info.num_redelivered == 0
    assert runs == [ev.id]
    assert await bus.dead_letters() == []
    await asyncio.sleep(2 * ACK_WAIT)  # nothing comes back later either
    assert runs == [ev.id] and len(outputs) == 1


async def test_a_redelivery_of_what_is_being_handled_here_is_not_run_again(
    nats_server: NatsServer, namespace: str, buses: list[Running]
) -> None:
    """Leases left to lapse (the lease keeper takes the loop for frozen): the server redelivers
    the message to the process still handling it, which renews and settles the newer delivery
    instead of running the handler a second time; the ack settles it for good."""
    runs: list[str] = []
    release = asyncio.Event()

    async def held(event: Event) -> None:
        runs.append(event.id)
        await release.wait()

    bus = await _running(
        nats_server.url,
        namespace,
        buses,
        Subscription("held", T.ECHO, {"subject": "in"}, held, max_attempts=5),
    )
    bus._leases._frozen_after = -1.0  # never renew: every ack_wait the server redelivers
    await bus.publish(echo("held").model_copy(update={"subject": "in"}))
    await eventually(lambda: len(bus._held) == 1)
    [box] = bus._held.values()
    await eventually(lambda: box[0].metadata.num_delivered >= 2, timeout=10)  # redelivered to us
    release.set()
    await _settled(bus, "held")
    assert len(runs) == 1
    assert await bus.dead_letters() == []


async def test_a_delivery_is_handed_out_while_its_pull_request_is_open(
    nats_server: NatsServer, namespace: str
) -> None:
    """The Puller hands each delivery out as it arrives, not when the request that brought it is
    full or expires (nats-py's fetch held them so: up to a whole 1 s lease before the handler)."""
    bus = NatsBus(nats_server.url, namespace=namespace, ack_wait=ACK_WAIT)
    bus.subscribe(Subscription("prompt", T.ECHO, {}, _never))
    await bus.start()  # the consumer exists; nothing consumes
    assert bus._nc is not None
    got: list[Msg] = []
    puller = Puller(bus._nc, bus.stream, bus.durable_for("prompt"), got.append)
    await puller.start()
    request = asyncio.create_task(puller.pull(16, 30.0))
    try:
        await asyncio.sleep(0)
        await bus.publish(echo("prompt"))
        await eventually(lambda: bool(got))
        assert not request.done() and puller.outstanding == 15
        await got[0].ack()
    finally:
        request.cancel()
        await puller.stop()
        await bus.close()


async def _never(event: Event) -> None:
    raise AssertionError("not run: the test pulls by hand")
