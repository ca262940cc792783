"""The KV/claims contract, once, for every store backend.

A backend's test module subclasses :class:`KVConformance` and provides ``kv_url``: a URL of a
fresh, isolated store for this test (several KV instances opened on it share the data).
"""

from __future__ import annotations

import asyncio

import pytest

from shared.errors import Conflict
from shared.store import Store, claim_key, open_kv


class KVConformance:
    @pytest.fixture
    def kv_url(self):  # pragma: no cover - every backend overrides it
        raise NotImplementedError

    @pytest.fixture
    async def kvs(self, kv_url):
        made = []

        async def make():
            kv = open_kv(kv_url)
            await kv.start()
            made.append(kv)
            return kv

        yield make
        for kv in made:
            await kv.close()

    async def test_create_get_update_delete(self, kvs):
        kv = await kvs()
        assert await kv.get("b", "k") is None
        r1 = await kv.create("b", "k", {"n": 1})
        e = await kv.get("b", "k")
        assert e.value == {"n": 1} and e.revision == r1
        r2 = await kv.update("b", "k", {"n": 2}, r1)
        assert r2 > r1
        with pytest.raises(Conflict):
            await kv.update("b", "k", {"n": 3}, r1)
        with pytest.raises(Conflict):
            await kv.create("b", "k", {"n": 9})
        assert (await kv.get("b", "k")).value == {"n": 2}
        await kv.delete("b", "k")
        assert await kv.get("b", "k") is None
        await kv.create("b", "k", {"n": 4})  # a deleted key can be created again
        assert (await kv.get("b", "k")).value == {"n": 4}

    async def test_put_and_keys_with_prefix_and_odd_characters(self, kvs):
        kv = await kvs()
        keys = [
            "cce-prod-a/upgrade/v1.28.3-r0",
            "cce-prod-a/precheck/v1.28",
            "kafka canary/verify/3.5.1",
            "ünïcode/x/1",
        ]
        for k in keys:
            await kv.put("claims", k, {"k": k})
        assert await kv.keys("claims") == sorted(keys)
        assert await kv.keys("claims", "cce-prod-a/") == sorted(keys[:2])
        assert await kv.keys("empty-bucket") == []
        for k in keys:
            assert (await kv.get("claims", k)).value == {"k": k}

    async def test_delete_at_stale_revision_conflicts(self, kvs):
        kv = await kvs()
        r1 = await kv.create("b", "k", {"n": 1})
        await kv.update("b", "k", {"n": 2}, r1)
        with pytest.raises(Conflict):
            await kv.delete("b", "k", revision=r1)

    async def test_concurrent_claims_exactly_one_wins(self, kvs):
        a, b = await kvs(), await kvs()  # two connections, as two workers would have
        key = claim_key("cce-prod-a", "upgrade", "v1.28.3-r0")
        results = await asyncio.gather(
            *[Store(a if i % 2 else b).claims.claim(key, owner=f"w{i}") for i in range(20)]
        )
        winners = [r for r in results if r.won]
        assert len(winners) == 1
        assert {r.owner for r in results} == {winners[0].owner}

    async def test_claim_record_release(self, kvs):
        store = Store(await kvs())
        key = claim_key("t", "upgrade", "2")
        c = await store.claims.claim(key, "w1")
        assert c.won and c.state == "claimed" and c.job_id is None
        again = await store.claims.claim(key, "w2")
        assert not again.won and again.state == "claimed" and again.owner == "w1"
        rec = await store.claims.record(c, "job-123", {"vendor": "cce"})
        assert rec.state == "recorded"
        seen = await store.claims.claim(key, "w3")
        assert not seen.won and seen.job_id == "job-123" and seen.state == "recorded"
        with pytest.raises(Conflict):
            await store.claims.record(c, "job-other")  # stale revision: someone recorded already
        other = claim_key("t", "upgrade", "3")
        c2 = await store.claims.claim(other, "w1")
        await store.claims.release(c2)
        assert (await store.claims.claim(other, "w2")).won

    async def test_a_claim_remembers_what_happened_and_when_it_began(self, kvs):
        """Every transition keeps the claim's creation facts (ages come from the claim itself,
        never from a later entry), and a stale revision cannot move it."""
        store = Store(await kvs())
        key = claim_key("t", "upgrade", "9")
        c = await store.claims.claim(key, "w1", domain_at=1000.0, vendor_at=1090.5)
        doubt = await store.claims.in_doubt(
            c, conflict={"code": "CCE.01409001", "message": "busy", "transient": False}
        )
        looked = await store.claims.looked(doubt)
        seen = await store.claims.get(key)
        assert seen is not None and seen.state == "claimed" and seen.in_doubt_at is not None
        assert len(seen.looks) == 1 and seen.conflict["code"] == "CCE.01409001"
        assert (seen.claimed_at, seen.domain_at, seen.vendor_at, seen.owner) == (
            c.claimed_at,
            1000.0,
            1090.5,
            "w1",
        )
        with pytest.raises(Conflict):
            await store.claims.looked(doubt)  # stale: another delivery looked meanwhile
        refused = await store.claims.refuse(looked, "DBS.200022", "Instance not found", "req-1")
        again = await store.claims.claim(key, "w2")
        assert not again.won and again.state == "refused" and again.refusal == refused.refusal
        assert again.refusal == {"code": "DBS.200022", "message": "Instance not found", "request_id": "req-1"}
        assert again.claimed_at == c.claimed_at and again.vendor_at == 1090.5

    async def test_ledger_concurrent_stage_updates_are_not_lost(self, kvs):
        a, b = Store(await kvs()), Store(await kvs())
        await a.ledger.open_run("run1", target="t", kind="cce")
        await asyncio.gather(
            *[(a if i % 2 else b).ledger.record_stage("run1", f"s{i}", status="ok") for i in range(10)]
        )
        run = await a.ledger.run("run1")
        assert set(run["stages"]) == {f"s{i}" for i in range(10)}
        assert run["target"] == "t"
        await a.ledger.set_version("t", "v1.28")
        assert await b.ledger.version("t") == "v1.28"
        assert [r["id"] for r in await b.ledger.runs()] == ["run1"]
