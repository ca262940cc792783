"""Stage functions through a Runtime (SQLite bus, real simulator): each kind from its first
stage.requested to upgrade.succeeded; vendor refusals and failed jobs; the window gate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from events import T
from shared.domain.stages import UPGRADE_STAGES, run_id
from shared.store import claim_key
from tests.functions._stages_harness import KINDS, TARGETS, UPGRADE_ENDPOINT, pipeline


@pytest.fixture(autouse=True)
def _creds(stage_creds) -> None:
    """Every test here talks to the simulator with its credentials."""


@pytest.fixture
def bus_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/u.db"


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_kind_runs_from_its_first_stage_to_upgrade_succeeded(bus_url: str, kind: str) -> None:
    name = KINDS[kind]
    _, sim_id, from_v, to_v, _ = TARGETS[name]
    async with pipeline(bus_url) as p:
        rid = await p.start(name)
        outcome = await p.outcome(name)
        assert outcome.type == T.UPGRADE_SUCCEEDED, outcome
        assert (outcome.data.from_version, outcome.data.to_version) == (from_v, to_v)
        assert outcome.runid == rid
        sim_target = p.sim.target(kind, sim_id)
        p.sim.state.refresh(sim_target)
        assert sim_target.version == to_v  # the vendor says so, not only our ledger
        assert await p.store.ledger.version(name) == to_v
        run = await p.store.ledger.run(rid)
        assert run["state"] == "succeeded" and run["upgrade_calls"] == 1
        assert all(s["state"] == "succeeded" for s in run["stages"].values())
        assert (await p.stats())[UPGRADE_ENDPOINT[kind]] == {sim_id: 1}
        # every claimed stage ended recorded (with the vendor's job id where there is one)
        for stage in UPGRADE_STAGES & set(run["stages"]):
            claim = await p.store.claims.get(claim_key(name, stage, to_v))
            assert claim is not None and claim.state == "recorded"


async def test_a_permanent_refusal_fails_the_stage_with_the_vendors_code(bus_url: str) -> None:
    async with pipeline(bus_url) as p:
        event = p.request("cce-a", "upgrade")
        bad = event.model_copy(update={"data": event.data.model_copy(update={"to_version": "v1.35.0-r0"})})
        await p.runtime.bus.publish(bad.model_copy(update={"runid": run_id("cce-a", "v1.35.0-r0")}))
        outcome = await p.outcome("cce-a")
        assert outcome.type == T.UPGRADE_FAILED
        failed = p.seen[T.STAGE_FAILED][0].data
        assert failed.code == "CCE.01400001" and "v1.35.0-r0" in failed.message
        assert (outcome.data.stage, outcome.data.code) == ("upgrade", "CCE.01400001")
        # refused by the vendor: the claim remembers the refusal, so a redelivery fails the same way
        claim = await p.store.claims.get(claim_key("cce-a", "upgrade", "v1.35.0-r0"))
        assert claim is not None and claim.state == "refused" and claim.refusal["code"] == "CCE.01400001"
        run = await p.store.ledger.run(run_id("cce-a", "v1.35.0-r0"))
        assert run["state"] == "failed" and run["stages"]["upgrade"]["code"] == "CCE.01400001"


async def test_kafka_precheck_refusal_carries_code_and_request_id(bus_url: str) -> None:
    async with pipeline(bus_url) as p:
        event = p.request("kafka-a", "precheck")
        same = event.data.model_copy(update={"to_version": "2823006"})  # not newer than the cluster
        await p.runtime.bus.publish(
            event.model_copy(update={"data": same, "runid": run_id("kafka-a", "2823006")})
        )
        outcome = await p.outcome("kafka-a")
        assert outcome.type == T.UPGRADE_FAILED and outcome.data.code == "10153"
        failed = p.seen[T.STAGE_FAILED][0].data
        assert failed.request_id and "later than" in failed.message


async def test_a_request_refused_before_sending_fails_with_the_field(bus_url: str) -> None:
    async with pipeline(bus_url) as p:
        event = p.request("kafka-a", "upgrade")
        named = event.data.model_copy(update={"to_version": "3.5.1"})  # a name, not a version code
        await p.runtime.bus.publish(
            event.model_copy(update={"data": named, "runid": run_id("kafka-a", "3.5.1")})
        )
        outcome = await p.outcome("kafka-a")
        assert outcome.data.code == "client.validation" and "to_version" in outcome.data.message
        assert "ncloud.upgrade" not in await p.stats()


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_failed_vendor_job_fails_the_upgrade_with_its_reason(bus_url: str, kind: str) -> None:
    name = KINDS[kind]
    _, sim_id, from_v, _, _ = TARGETS[name]
    async with pipeline(bus_url) as p:
        p.sim.target(kind, sim_id).fail_next = True
        rid = await p.start(name)
        outcome = await p.outcome(name)
        assert outcome.type == T.UPGRADE_FAILED
        assert outcome.data.stage == "upgrade"
        failed = p.seen[T.STAGE_FAILED][0].data
        assert failed.job_id and failed.message  # the vendor's fail_reason
        # the vendor's own failure reason; NAVER documents none, so its cluster's state is the reason
        reasons = ("simulated failure", "did not start", "did not rejoin", "is in error")
        assert any(w in failed.message for w in reasons), failed
        run = await p.store.ledger.run(rid)
        assert run["state"] == "failed" and run["stages"]["upgrade"]["state"] == "failed"
        assert await p.store.ledger.version(name) is None
        assert p.sim.target(kind, sim_id).version == from_v


async def test_a_closed_window_delays_the_stage_without_calling(bus_url: str) -> None:
    # A window that opens on 1 January only: closed now (unless the test runs on 1 January).
    window = '{rrule: "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1;BYHOUR=2", duration: 2h, timezone: UTC}'
    async with pipeline(bus_url, window=window) as p:
        rid = await p.start("cce-a")
        store = p.store

        async def waiting() -> bool:
            run = await store.ledger.run(rid)
            return bool(run and run["stages"].get("precheck", {}).get("state") == "waiting")

        for _ in range(500):
            if await waiting():
                break
            await asyncio.sleep(0.02)
        run = await store.ledger.run(rid)
        entry = run["stages"]["precheck"]
        assert entry["state"] == "waiting" and entry["waiting_until"].endswith("02:00:00Z")
        assert "closed" in entry["reason"]
        assert await p.stats() == {}  # no vendor call of any kind
