"""Upshift on a 3-node JetStream cluster (fixture ``nats_cluster``: real nats-server processes on
loopback): server-list URLs and replicas, workers sharing one durable pull consumer, and a rollout
of the real pipeline that survives a node killed -9 and workers killed at random.

The rollout is ``bench._rollout.Rollout`` (the chaos tests' harness: the in-process simulator,
``upshift serve`` and ``upshift worker`` subprocesses, the invariants of ``Figures.problems``),
here on the cluster with ``replicas=3``. Every wait is on a state, with generous bounds.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import pytest
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from bench._rollout import Rollout, wait_healthy
from events import T
from shared.bus import Subscription, parse_bus_url
from shared.bus.jetstream import connect
from shared.bus.nats import NatsBus
from shared.errors import ConfigError
from shared.store.nats import NatsKV
from simulator.natsd import NatsCluster, NatsServer
from tests.helpers import echo, eventually

#: The issue asks for 200 targets; this is what fits in about two minutes on a 2-core CI machine
#: with serve, three workers and three nats-servers sharing it (see the module's report).
TARGETS = 200
#: Real seconds for every run to end (a normal run needs well under a minute).
GIVE_UP_S = 240.0


def test_a_url_lists_servers_and_replicas() -> None:
    url = parse_bus_url("nats://a:1,b,c:3?replicas=3&namespace=x")
    assert url.servers == ["nats://a:1", "nats://b:4222", "nats://c:3"]
    assert (url.replicas, url.options["namespace"]) == (3, "x")
    assert parse_bus_url("nats://a:1").replicas == 1  # the single-server default
    assert parse_bus_url("nats://a:1").servers == ["nats://a:1"]
    # the location is a bus URL itself (processes pass it on), and the scheme may be repeated
    assert parse_bus_url(url.location).servers == url.servers
    assert parse_bus_url("nats://a:1,nats://b,c:3?replicas=3").location == url.location
    for bad, says in [
        ("nats://a:1,,b:2", "host"),
        ("nats://a:1,b:x", "port"),
        ("nats://a:1?replicas=0", "replicas"),
        ("nats://a:1?replicas=6", "replicas"),
        ("nats://a:1?replicas=two", "replicas"),
        ("sqlite:///x.db?replicas=3", "replicas"),
    ]:
        with pytest.raises(ConfigError, match=says):
            parse_bus_url(bad)


async def test_streams_consumers_and_buckets_get_the_replicas(nats_cluster: NatsCluster, namespace) -> None:
    url = f"{nats_cluster.url}?namespace={namespace}&replicas=3"
    parsed = parse_bus_url(url)
    bus = NatsBus(parsed.location, namespace=namespace, replicas=parsed.replicas)
    bus.subscribe(Subscription("f", T.ECHO, handler=_noop))
    kv = NatsKV(parsed.location, namespace=namespace, replicas=parsed.replicas)
    try:
        await bus.start()
        await kv.put("b", "k", 1)
        js = bus.js
        for stream in (bus.stream, bus.dlq_stream, f"KV_{namespace}_b"):
            info = await js.stream_info(stream)
            assert info.config.num_replicas == 3, stream
            assert info.cluster is not None and len(info.cluster.replicas or []) == 2, stream
        consumer = await js.consumer_info(bus.stream, "f")
        assert consumer.config.num_replicas == 3
    finally:
        await kv.close()
        await bus.close()


async def test_a_single_replica_namespace_moves_to_three(nats_cluster: NatsCluster, namespace) -> None:
    """The same namespace opened with replicas=1, then replicas=3: streams and consumer follow
    (the stream scales up in the background; the consumer is created once it has)."""
    for replicas in (1, 3):
        bus = NatsBus(nats_cluster.url, namespace=namespace, replicas=replicas)
        bus.subscribe(Subscription("f", T.ECHO, handler=_noop))
        try:
            await bus.start()
            assert (await bus.js.stream_info(bus.stream)).config.num_replicas == replicas
            assert (await bus.js.consumer_info(bus.stream, "f")).config.num_replicas == replicas
        finally:
            await bus.close()


async def _noop(event):
    return None


async def test_workers_share_one_durable_pull_consumer(nats_cluster: NatsCluster, namespace) -> None:
    """Three buses (three workers) subscribe the same function: each handles some of the events,
    none is handled twice, and the server holds one consumer for the function, not three."""
    handled: list[tuple[int, str]] = []

    def handler(worker: int):
        async def handle(event):
            handled.append((worker, event.id))
            await asyncio.sleep(0.005)  # a handler's await: the others' pull requests get served meanwhile
            return None

        return handle

    buses = []
    for i, node in enumerate(nats_cluster.nodes):  # each worker connected to another node first
        bus = NatsBus(node.url, namespace=namespace)
        bus.subscribe(Subscription("track_job", T.ECHO, handler=handler(i), concurrency=4))
        await bus.start()
        buses.append(bus)
    runs = [asyncio.create_task(b.run()) for b in buses]
    publisher = NatsBus(nats_cluster.url, namespace=namespace)
    try:
        await publisher.start()
        consumers = [c.name for c in await publisher.js.consumers_info(publisher.stream)]
        assert consumers == ["track_job"]

        async def waiting() -> int:
            info = await publisher.js.consumer_info(publisher.stream, "track_job")
            return info.num_waiting or 0

        deadline = time.monotonic() + 30
        while await waiting() < 3:  # every worker has a pull request in: all can be served
            assert time.monotonic() < deadline, "the three workers did not all fetch"
            await asyncio.sleep(0.05)
        ids = [f"e{n}" for n in range(300)]
        for chunk in range(0, len(ids), 50):
            await asyncio.gather(*(publisher.publish(echo(str(n), id=n)) for n in ids[chunk : chunk + 50]))
        await eventually(lambda: {e for _, e in handled} == set(ids), timeout=60)
    finally:
        await publisher.close()
        for bus in buses:
            await bus.close()
        await asyncio.gather(*runs, return_exceptions=True)
    twice = [e for e, n in Counter(e for _, e in handled).items() if n > 1]
    assert not twice, f"handled more than once: {twice[:10]}"
    per_worker = Counter(w for w, _ in handled)
    assert all(per_worker[w] > 0 for w in range(3)), f"not spread over the workers: {dict(per_worker)}"


async def test_a_bus_outage_does_not_spend_a_delivery_s_attempts(nats_server: NatsServer, namespace) -> None:
    """A handler that meets an unavailable bus (what a node's loss looks like to it while a leader
    is elected) is run again in place: with one attempt allowed, it still ends handled, once
    delivered, not dead-lettered. Any other error still spends the attempt."""
    outage = [NoStreamResponseError(), ServiceUnavailableError(code=503, description="no leader")]
    calls: list[str] = []

    async def handler(event):
        calls.append(event.id)
        if event.id == "flaky" and outage:
            raise outage.pop(0)
        if event.id == "broken":
            raise ValueError("a real failure")
        return None

    bus = NatsBus(nats_server.url, namespace=namespace, ack_wait=5.0)
    bus.subscribe(Subscription("f", T.ECHO, handler=handler, max_attempts=1))
    await bus.start()
    task = asyncio.create_task(bus.run())
    try:
        await bus.publish(echo("x", id="flaky"))
        await bus.publish(echo("x", id="broken"))
        await eventually(lambda: calls.count("flaky") == 3 and "broken" in calls, timeout=30)
        deadline = time.monotonic() + 30
        while (letters := await bus.dead_letters()) == []:
            assert time.monotonic() < deadline, "the real failure was not dead-lettered"
            await asyncio.sleep(0.1)
        assert [d.event.id for d in letters] == ["broken"]
        assert await bus.pending() == 0
        info = await bus.js.consumer_info(bus.stream, "f")
        assert info.delivered.consumer_seq == 2, "the flaky event was delivered more than once"
    finally:
        await bus.close()
        await asyncio.wait_for(task, 10)


async def _stream_leader(ro: Rollout, cluster: NatsCluster) -> tuple[int, int]:
    """(index of the node leading the rollout's main stream — the one whose loss hurts most —,
    the stream's replicas). Read on a bare connection: a bus would (re)configure the stream."""
    stream = parse_bus_url(ro.bus_url).options["namespace"].upper()
    nc = await connect(cluster.url)
    try:
        info = await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()
    leader = info.cluster.leader if info.cluster else None
    names = [f"{cluster.name}-{i + 1}" for i in range(len(cluster.nodes))]
    return (names.index(leader) if leader in names else 0), info.config.num_replicas or 1


async def _until_upgraded(ro: Rollout, count: int, limit_s: float) -> int:
    deadline = time.monotonic() + limit_s
    while (got := await ro.upgraded()) < count:
        assert time.monotonic() < deadline, f"only {got} of {count} targets upgraded in {limit_s}s"
        await asyncio.sleep(0.2)
    return got


async def test_a_rollout_survives_a_node_killed_and_workers_killed(
    nats_cluster: NatsCluster, tmp_path
) -> None:
    rng = random.Random(1313)
    started = time.monotonic()
    async with Rollout(
        tmp_path / "run", targets=TARGETS, failing=0, bus="nats", nats=nats_cluster,  # type: ignore[arg-type]
        speed=300.0, concurrency=50, seed=1313,
    ) as ro:  # fmt: skip
        ro.bus_url += "&replicas=3"  # before any process or store opens it
        serve, port = ro.serve()
        serve.start()
        workers = [ro.worker(i + 1).start() for i in range(3)]
        await wait_healthy(port, serve, limit_s=60)
        assert await ro.post_releases(port, proc=serve), "releases not accepted"
        seen: dict[str, int] = {}

        async def kill_a_worker(label: str) -> None:
            victim = rng.choice(workers)
            await ro.kill(victim)
            workers.remove(victim)
            workers.append(ro.worker(len(ro.procs)).start())  # a replacement, as an operator would
            seen[label] = await ro.upgraded()

        seen["node_killed_at"] = await _until_upgraded(ro, TARGETS // 10, GIVE_UP_S)
        node, replicas = await _stream_leader(ro, nats_cluster)
        assert replicas == 3
        await asyncio.to_thread(nats_cluster.kill, node)
        ro.kills["nats-server"] = 1
        await kill_a_worker("worker_killed_at")
        await _until_upgraded(ro, TARGETS // 3, GIVE_UP_S)  # progress with a node down
        await asyncio.to_thread(nats_cluster.start_again, node)
        seen["node_back_at"] = await ro.upgraded()
        await kill_a_worker("worker_killed_again_at")
        done = await ro.wait_done(GIVE_UP_S, every=1.0)
        fig = await ro.figures()
        assert (await _stream_leader(ro, nats_cluster))[1] == 3
    wall = time.monotonic() - started
    print(f"\ncluster failover rollout: {fig.summary()} {seen} test wall {wall:.0f}s")
    assert done, (
        f"runs not terminal after {GIVE_UP_S}s: {fig.not_terminal}\n{ro.log_excerpt(*fig.not_terminal)}"
    )
    assert seen["node_killed_at"] < TARGETS, "the node was killed after the rollout ended"
    assert seen["worker_killed_again_at"] < TARGETS, "the last worker kill came after the rollout ended"
    assert fig.kills == {"nats-server": 1, "worker": 2}
    problems = fig.problems()
    assert not problems, "\n".join(problems) + "\n" + ro.log_excerpt()
