"""What is NATS's own in the bus: subject mapping, the spare delivery that dead-letters a died
last attempt, redelivered outputs dropped by the stream's dedupe, restarts of the server,
namespaces and garbage on our subjects. The contract itself is ``tests/bus/conformance.py``'s
(run on NATS by ``test_nats.py``).

Each test gets its own namespace (its own streams), so tests do not see each other's events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest

from events import Event, T
from events.catalog import Echo
from shared.bus import Subscription
from shared.bus.nats import NatsBus
from shared.errors import ConfigError
from simulator.natsd import NatsServer
from tests.helpers import echo, eventually, stage_requested

Factory = Callable[..., Awaitable[NatsBus]]


@pytest.fixture
async def make_bus(nats_server: NatsServer, namespace: str) -> AsyncIterator[Factory]:
    """``await make_bus(*subs, ns=…, ack_wait=…, run=True)``: a started (and running) bus."""
    made: list[tuple[NatsBus, asyncio.Task[None] | None]] = []

    async def make(
        *subs: Subscription, ns: str | None = None, ack_wait: float = 5.0, run: bool = True
    ) -> NatsBus:
        bus = NatsBus(nats_server.url, namespace=ns or namespace, ack_wait=ack_wait)
        for sub in subs:
            bus.subscribe(sub)
        await bus.start()
        made.append((bus, asyncio.create_task(bus.run()) if run else None))
        return bus

    yield make
    for bus, task in made:
        await bus.close()
        if task is not None:
            await asyncio.wait_for(task, 10)


def collector(into: list[Event], emit: Callable[[Event], list] | None = None):
    async def handler(event: Event):
        into.append(event)
        return emit(event) if emit else None

    return handler


async def test_subject_mapping_and_filters(make_bus: Factory) -> None:
    bus = await make_bus(run=False)
    ns = bus.namespace
    assert bus.subject_for(echo()) == f"{ns}.dev_upshift_echo._._"
    assert (
        bus.subject_for(stage_requested("cce", "upgrade")) == f"{ns}.dev_upshift_stage_requested.cce.upgrade"
    )
    # Dots inside a value must not split the token; the data field stands in for a missing extension.
    ev = stage_requested("cce", "pre.check")
    ev = ev.model_copy(update={"kind": None})
    assert bus.subject_for(ev) == f"{ns}.dev_upshift_stage_requested.cce.pre=2Echeck"
    sub = Subscription("s", T.STAGE_REQUESTED, {"kind": "cce", "target": "t1"}, collector([]))
    assert bus.filter_for(sub) == f"{ns}.dev_upshift_stage_requested.cce.*"
    assert bus.filter_for(Subscription("e", T.ECHO, {}, collector([]))) == f"{ns}.dev_upshift_echo.*.*"


async def test_dead_letter_when_the_last_attempt_died(nats_server: NatsServer, make_bus: Factory) -> None:
    """A process that dies holding the last attempt never writes a dead letter: the consumer's
    spare delivery (max_deliver = attempts + 1) does, without running the handler again."""
    never: list[Event] = []
    sub = Subscription("crashy", T.ECHO, {}, collector(never), max_attempts=2)
    bus = await make_bus(sub, ack_wait=0.5, run=False)  # registers the consumer, consumes nothing
    ev = echo("orphan")
    await bus.publish(ev)
    # Two "processes" take the event and die without acking (fetch, no ack, ack_wait passes).
    nc = await nats.connect(nats_server.url)
    try:
        pull = await nc.jetstream().pull_subscribe_bind(durable=bus.durable_for("crashy"), stream=bus.stream)
        for _ in range(2):
            [msg] = await pull.fetch(1, timeout=5)
            assert msg.metadata.num_delivered <= 2
    finally:
        await nc.close()
    # The spare delivery reaches the (restarted) process, which dead-letters it unrun.
    await make_bus(sub, ack_wait=0.5)
    letters: list = []
    for _ in range(100):
        letters = await bus.dead_letters()
        if letters:
            break
        await asyncio.sleep(0.1)
    assert [(d.consumer, d.event.id, d.attempts) for d in letters] == [("crashy", ev.id, 3)]
    assert "max deliveries" in letters[0].error
    assert never == []


async def test_outputs_published_before_ack_and_deduped_on_redelivery(make_bus: Factory) -> None:
    """Die after publishing the outputs but before acking: the input comes back, the second run
    emits the same ids and the bus drops them, so downstream sees each output exactly once."""
    runs: list[str] = []
    outputs: list[Event] = []
    sink = await make_bus(Subscription("sink", T.ECHO, {"subject": "out"}, collector(outputs)))

    def fan_out(event: Event) -> list:
        return [
            event.follow(T.ECHO, Echo(message=f"out-{i}", reply=False), id_parts=(i,)).model_copy(
                update={"subject": "out"}
            )
            for i in range(3)
        ]

    async def dying(event: Event):
        runs.append("dying")
        return fan_out(event)

    victim = await make_bus(Subscription("worker", T.ECHO, {"subject": "in"}, dying), ack_wait=1.0)
    original = victim._publish_all

    async def publish_then_die(emitted):
        await original(emitted)  # the outputs are durable...
        await victim._nc.close()  # ...and the process dies before its ack

    victim._publish_all = publish_then_die  # type: ignore[method-assign]
    await victim.publish(echo("job").model_copy(update={"subject": "in"}))
    await eventually(lambda: runs == ["dying"])
    await eventually(lambda: len(outputs) == 3)

    async def healthy(event: Event):
        runs.append("healthy")
        return fan_out(event)

    await make_bus(Subscription("worker", T.ECHO, {"subject": "in"}, healthy), ack_wait=1.0)
    await eventually(lambda: runs == ["dying", "healthy"], timeout=10)
    await asyncio.sleep(1.0)
    assert sorted(e.data.message for e in outputs) == ["out-0", "out-1", "out-2"]
    info = await sink.js.stream_info(sink.stream)
    assert info.state.messages == 1 + 3  # the input and three outputs; the re-emitted copies dropped
    assert await sink.pending() == 0


async def test_restart_keeps_streams_consumers_and_schedules(own_nats_server: NatsServer) -> None:
    srv = own_nats_server
    got: list[str] = []

    async def handler(event: Event):
        got.append(event.data.message)

    bus = NatsBus(srv.url, namespace="restart", ack_wait=2.0)
    bus.subscribe(Subscription("keep", T.ECHO, {}, handler))
    await bus.start()
    runner = asyncio.create_task(bus.run())
    try:
        await bus.publish(echo("before"))
        await bus.publish(echo("scheduled"), delay=1.5)
        await eventually(lambda: got == ["before"])
        srv.restart()
        for _ in range(100):  # the client reconnects by itself
            try:
                await bus.publish(echo("after"))
                break
            except Exception:
                await asyncio.sleep(0.1)
        # At least once: an ack in flight when the server was killed may be lost (redelivery).
        await eventually(lambda: set(got) == {"after", "before", "scheduled"}, timeout=20)
        info = await bus.js.consumer_info(bus.stream, "keep")
        assert info.config.filter_subject == "restart.dev_upshift_echo.*.*"
    finally:
        await bus.close()
        await runner


def test_bad_namespace_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        NatsBus("nats://127.0.0.1:4222", namespace="has.dot")


async def test_undecodable_message_is_dropped_not_retried(make_bus: Factory) -> None:
    got: list[Event] = []
    bus = await make_bus(Subscription("e", T.ECHO, {}, collector(got)))
    # Someone wrote garbage on our subject: it is terminated (logged), and the next event flows.
    await bus.js.publish(f"{bus.namespace}.dev_upshift_echo._._", b"{not json")
    await bus.publish(echo("fine"))
    await eventually(lambda: [e.data.message for e in got] == ["fine"])
    for _ in range(50):
        if await bus.pending() == 0:
            break
        await asyncio.sleep(0.05)
    assert await bus.pending() == 0
