"""What is NATS's own in the KV store: namespaces, and buckets and revisions surviving a server
restart. The contract (CAS races, stale revisions, odd keys, listings) is
``tests/store/conformance.py``'s, run on NATS by ``test_nats_kv.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.errors import ConfigError, Conflict
from shared.store.nats import NatsKV
from simulator.natsd import NatsServer


@pytest.fixture
async def kv(nats_server: NatsServer, namespace: str) -> AsyncIterator[NatsKV]:
    store = NatsKV(nats_server.url, namespace=namespace)
    await store.start()
    yield store
    await store.close()


async def test_namespaces_are_isolated(nats_server: NatsServer, kv: NatsKV) -> None:
    other = NatsKV(nats_server.url, namespace=f"{kv.namespace}x")
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


async def test_restart_keeps_buckets_and_revisions(own_nats_server: NatsServer) -> None:
    srv = own_nats_server
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
