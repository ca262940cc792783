"""NATS-specific KV behaviour: CAS races, stale revisions, odd keys, restarts, isolation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.errors import ConfigError, Conflict
from shared.store.nats import NatsKV
from simulator.natsd import NatsServer


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    srv = NatsServer.start()
    yield srv
    srv.stop()


@pytest.fixture
async def kv(server: NatsServer) -> AsyncIterator[NatsKV]:
    store = NatsKV(server.url, namespace=f"t{uuid.uuid4().hex[:10]}")
    await store.start()
    yield store
    await store.close()


async def test_concurrent_create_exactly_one_wins(server: NatsServer, kv: NatsKV) -> None:
    # Separate connections, as separate processes would race.
    others = [NatsKV(server.url, namespace=kv.namespace) for _ in range(7)]
    for o in others:
        await o.start()
    try:
        stores = [kv, *others]
        results = await asyncio.gather(
            *(s.create("claims", "cce/prod:upgrade:1.29", {"who": i}) for i, s in enumerate(stores)),
            return_exceptions=True,
        )
    finally:
        for o in others:
            await o.close()
    wins = [r for r in results if isinstance(r, int)]
    assert len(wins) == 1, results
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, int)), results
    entry = await kv.get("claims", "cce/prod:upgrade:1.29")
    assert entry is not None and entry.revision == wins[0]


async def test_update_with_stale_revision_conflicts(kv: NatsKV) -> None:
    r1 = await kv.create("ledger", "k", {"v": 1})
    r2 = await kv.update("ledger", "k", {"v": 2}, r1)
    assert r2 > r1
    with pytest.raises(Conflict):
        await kv.update("ledger", "k", {"v": 3}, r1)
    with pytest.raises(Conflict):
        await kv.update("ledger", "absent", {"v": 3}, r1)
    entry = await kv.get("ledger", "k")
    assert entry is not None and entry.value == {"v": 2} and entry.revision == r2


async def test_concurrent_updates_from_one_revision_exactly_one_wins(kv: NatsKV) -> None:
    r1 = await kv.create("ledger", "k", {"n": 0})
    results = await asyncio.gather(
        *(kv.update("ledger", "k", {"n": i}, r1) for i in range(10)), return_exceptions=True
    )
    assert sum(isinstance(r, int) for r in results) == 1, results


async def test_delete_then_create_again_and_delete_at_revision(kv: NatsKV) -> None:
    r1 = await kv.create("b", "k", {"a": 1})
    with pytest.raises(Conflict):
        await kv.delete("b", "k", revision=r1 + 100)
    await kv.delete("b", "k", revision=r1)
    assert await kv.get("b", "k") is None
    assert await kv.keys("b") == []
    r2 = await kv.create("b", "k", {"a": 2})
    assert r2 > r1
    with pytest.raises(Conflict):
        await kv.create("b", "k", {"a": 3})
    await kv.delete("b", "k")
    await kv.delete("b", "k")  # absent: fine
    await kv.delete("b", "never", revision=3)  # absent with a revision: nothing to remove
    assert await kv.get("b", "k") is None


async def test_keys_escaped_and_prefix_filtered(kv: NatsKV) -> None:
    assert await kv.keys("empty") == []
    odd = ["run/1/stage a", "run/1/ü*>", "run/2", ".lead", "trail.", "a..b", "", "other"]
    for k in odd:
        await kv.put("b", k, {"k": k})
    assert await kv.keys("b") == sorted(odd)
    assert await kv.keys("b", "run/1/") == ["run/1/stage a", "run/1/ü*>"]
    for k in odd:
        entry = await kv.get("b", k)
        assert entry is not None and entry.key == k and entry.value == {"k": k}


async def test_namespaces_are_isolated(server: NatsServer, kv: NatsKV) -> None:
    other = NatsKV(server.url, namespace=f"t{uuid.uuid4().hex[:10]}")
    await other.start()
    try:
        await kv.put("b", "k", {"mine": True})
        assert await other.get("b", "k") is None
        await other.create("b", "k", {"mine": False})  # no Conflict across namespaces
    finally:
        await other.close()


def test_bad_namespace_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        NatsKV("nats://127.0.0.1:4222", namespace="a.b")


async def test_restart_keeps_buckets_and_revisions() -> None:
    srv = NatsServer.start()
    store = NatsKV(srv.url, namespace="restart")
    try:
        await store.start()
        rev = await store.create("claims", "k", {"job": "j-1"})
        srv.restart()
        # The connection reconnects on its own; the bucket and the revision survived.
        entry = None
        for _ in range(100):
            try:
                entry = await store.get("claims", "k")
                break
            except Exception:
                await asyncio.sleep(0.1)
        assert entry is not None and entry.value == {"job": "j-1"} and entry.revision == rev
        with pytest.raises(Conflict):
            await store.create("claims", "k", {"job": "j-2"})
        assert await store.update("claims", "k", {"job": "j-2"}, rev) > rev
    finally:
        await store.close()
        srv.stop()


async def test_keys_lists_every_key_while_others_write(kv: NatsKV) -> None:
    """``KeyValue.keys()`` of nats.py can end its read early under concurrent writes (nats.py
    #842): every key written before the listing began must be in it, whatever is written during."""
    import asyncio

    before = [f"run/{i:04d}" for i in range(300)]
    await asyncio.gather(*(kv.put("busy", k, {"i": k}) for k in before))
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            await kv.put("busy", f"late/{n:05d}", {"n": n})
            await kv.put("busy", before[n % len(before)], {"again": n})  # rewrite old keys too
            n += 1

    task = asyncio.create_task(writer())
    try:
        for _ in range(5):
            listed = set(await kv.keys("busy", "run/"))
            assert listed == set(before)
    finally:
        stop.set()
        await task
