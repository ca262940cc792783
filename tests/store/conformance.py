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
            await kv.update("b", "absent", {"n": 3}, r1)  # no key is at any revision
        with pytest.raises(Conflict):
            await kv.create("b", "k", {"n": 9})
        e = await kv.get("b", "k")
        assert e.value == {"n": 2} and e.revision == r2
        await kv.delete("b", "k")
        assert await kv.get("b", "k") is None
        assert await kv.keys("b") == []
        r3 = await kv.create("b", "k", {"n": 4})  # a deleted key can be created again
        assert r3 > r2
        assert (await kv.get("b", "k")).value == {"n": 4}

    async def test_put_and_keys_with_prefix_and_odd_characters(self, kvs):
        """Any string is a key (NATS escapes what its key alphabet lacks): it lists, filters by
        prefix and reads back as written."""
        kv = await kvs()
        keys = [
            "cce-prod-a/upgrade/v1.28.3-r0",
            "cce-prod-a/precheck/v1.28",
            "kafka canary/verify/3.5.1",
            "ünïcode/x/1",
            "cce-prod-a/ü*>",
            ".lead",
            "trail.",
            "a..b",
            "",
        ]
        for k in keys:
            await kv.put("claims", k, {"k": k})
        assert await kv.keys("claims") == sorted(keys)
        assert await kv.keys("claims", "cce-prod-a/") == sorted(
            k for k in keys if k.startswith("cce-prod-a/")
        )
        assert await kv.keys("empty-bucket") == []
        for k in keys:
            e = await kv.get("claims", k)
            assert e.key == k and e.value == {"k": k}

    async def test_keys_lists_every_key_while_others_write(self, kvs):
        """Every key written before a listing began is in it, whatever is written during (the
        nats.py ``KeyValue.keys()`` could end its read early under concurrent writes: #842)."""
        kv, writer_kv = await kvs(), await kvs()
        before = [f"run/{i:04d}" for i in range(300)]
        await asyncio.gather(*(kv.put("busy", k, {"i": k}) for k in before))
        stop = asyncio.Event()

        async def writer() -> None:
            n = 0
            while not stop.is_set():
                await writer_kv.put("busy", f"late/{n:05d}", {"n": n})
                await writer_kv.put("busy", before[n % len(before)], {"again": n})  # old keys too
                n += 1
                await asyncio.sleep(0)  # a backend whose writes never suspend still interleaves

        task = asyncio.create_task(writer())
        try:
            for _ in range(5):
                assert set(await kv.keys("busy", "run/")) == set(before)
        finally:
            stop.set()
            await task

    async def test_delete_at_a_revision(self, kvs):
        """Delete at a stale (or future) revision conflicts, at the current one removes; an absent
        key is fine to delete, with a revision or without."""
        kv = await kvs()
        r1 = await kv.create("b", "k", {"n": 1})
        r2 = await kv.update("b", "k", {"n": 2}, r1)
        with pytest.raises(Conflict):
            await kv.delete("b", "k", revision=r1)
        with pytest.raises(Conflict):
            await kv.delete("b", "k", revision=r2 + 100)
        await kv.delete("b", "k", revision=r2)
        assert await kv.get("b", "k") is None
        await kv.delete("b", "k")  # absent: fine
        await kv.delete("b", "never", revision=3)  # absent with a revision: nothing to remove
        assert await kv.get("b", "k") is None

    async def test_concurrent_creates_exactly_one_wins(self, kvs):
        """Eight connections (as eight processes) create one key: one revision, seven Conflicts."""
        stores = [await kvs() for _ in range(8)]
        results = await asyncio.gather(
            *(s.create("claims", "cce/prod:upgrade:1.29", {"who": i}) for i, s in enumerate(stores)),
            return_exceptions=True,
        )
        wins = [r for r in results if isinstance(r, int)]
        assert len(wins) == 1, results
        assert all(isinstance(r, Conflict) for r in results if not isinstance(r, int)), results
        entry = await stores[0].get("claims", "cce/prod:upgrade:1.29")
        assert entry is not None and entry.revision == wins[0]

    async def test_concurrent_updates_from_one_revision_exactly_one_wins(self, kvs):
        a, b = await kvs(), await kvs()
        r1 = await a.create("ledger", "k", {"n": 0})
        results = await asyncio.gather(
            *((a if i % 2 else b).update("ledger", "k", {"n": i}, r1) for i in range(10)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, int) for r in results) == 1, results
        assert all(isinstance(r, Conflict) for r in results if not isinstance(r, int)), results

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

    async def test_a_stage_keeps_the_first_outcome_settled_on_its_job(self, kvs):
        """Two looks at one job from two processes at once, one reading "succeeded", the other
        "stuck": one outcome stands, both looks count, and a later look at another job of the
        stage is not held by it."""
        a, b = Store(await kvs()), Store(await kvs())
        await a.ledger.open_run("run1", target="t", kind="cce")
        await a.ledger.note_stage("run1", "upgrade", state="running", job_id="job-1")
        ok, stuck = await asyncio.gather(
            a.ledger.settle_stage("run1", "upgrade", "job-1", status_calls=1, state="succeeded"),
            b.ledger.settle_stage("run1", "upgrade", "job-1", status_calls=1, state="failed", code="stuck"),
        )
        assert ok["state"] == stuck["state"] in ("succeeded", "failed"), (ok, stuck)
        stored = (await a.ledger.run("run1"))["stages"]["upgrade"]
        assert stored["state"] == ok["state"] and stored["status_calls"] == 2
        assert ("code" in stored) == (stored["state"] == "failed")
        again = await a.ledger.settle_stage("run1", "upgrade", "job-2", state="succeeded")
        assert again["state"] == "succeeded"
