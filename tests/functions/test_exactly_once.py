"""Exactly one upgrade call per (target, stage, version) — DESIGN §6.2 — counted by the simulator.

* every event delivered twice (the first one published twice, every emitted one re-published
  under a fresh id), on the SQLite bus and on the NATS bus;
* "commit then drop the response": the vendor starts the job but the answer never arrives; the
  next delivery reconciles (task list / job / cluster version) and does not call again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from events import T
from events.envelope import Event
from shared.bus import Emitted
from shared.domain.stages import run_id
from shared.store import claim_key
from tests.functions._stages_harness import (
    KINDS,
    TARGETS,
    UPGRADE_ENDPOINT,
    Pipeline,
    pipeline,
    until,
)

#: Every endpoint that starts something at the vendor, per kind (claimed calls).
STARTS = {
    "cce": ("cce.upgrade",),
    "autopilot": ("autopilot.workflow", "autopilot.snapshot", "autopilot.upgrade"),
    "starrocks": ("taurusdb.upgrade",),
    "oceanbase": ("ocp.upgrade",),
    "ncloud-kafka": ("ncloud.upgrade",),
}
SERVICE = {
    "cce": "cce",
    "autopilot": "autopilot",
    "starrocks": "taurusdb",
    "oceanbase": "ocp",
    "ncloud-kafka": "ncloud",
}


@pytest.fixture(autouse=True)
def _creds(stage_creds) -> None:
    """Every test here talks to the simulator with its credentials."""


async def _quiet(p: Pipeline) -> None:
    """Until nothing is left to deliver: every handler has run and settled, no delay pending."""
    for _ in range(3000):
        if await p.runtime.bus.pending() == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the bus still has {await p.runtime.bus.pending()} deliveries pending")


async def _everything_twice(p: Pipeline) -> None:
    for name in TARGETS:
        await p.start(name, twice=True)
    for name in TARGETS:
        outcome = await p.outcome(name, 90)
        assert outcome.type == T.UPGRADE_SUCCEEDED, outcome
    await _quiet(p)  # (what follows counts what arrived, so first let everything arrive)
    stats = await p.stats()
    for name, (kind, sim_id, _from, to_v, _) in TARGETS.items():
        for endpoint in STARTS[kind]:
            assert stats[endpoint][sim_id] == 1, (endpoint, stats[endpoint])
        target = p.sim.target(kind, sim_id)
        p.sim.state.refresh(target)
        assert target.version == to_v
        run = await p.store.ledger.run(run_id(name, to_v))
        assert run["upgrade_calls"] == 1
    # the copies really were delivered: each outcome twice (original + copy), and no more — two
    # ids per target (a delivery may repeat an id: at least once is the bus's promise)
    outcomes = {e.id: e for e in p.seen[T.UPGRADE_SUCCEEDED]}
    per_target = {name: sum(e.target == name for e in outcomes.values()) for name in TARGETS}
    assert per_target == dict.fromkeys(TARGETS, 2), per_target
    assert len(set(outcomes) & p.runtime.bus.copies) == len(TARGETS)
    # and copies were made all along the chain, not only of the first event (how many depends on
    # which of two deliveries ran first, so only a floor: every target's stage.started and poll)
    assert len(p.runtime.bus.copies) >= 4 * len(TARGETS)


async def test_every_event_twice_on_sqlite(tmp_path: Path) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db", doubling=True) as p:
        await _everything_twice(p)


async def test_every_event_twice_on_nats(nats_server, namespace: str) -> None:
    async with pipeline(f"{nats_server.url}?namespace={namespace}", doubling=True) as p:
        await _everything_twice(p)


async def test_every_event_twice_when_outcomes_are_published_but_not_acked_on_nats(
    nats_server, namespace: str
) -> None:
    """What a loaded machine does now and then, done every time: advance's outputs (the outcome
    and its copy) are stored but the publish is reported failed, so advance runs again."""
    async with pipeline(f"{nats_server.url}?namespace={namespace}", doubling=True) as p:
        nats_bus = p.runtime.bus.bus
        publish_all = nats_bus._publish_all
        failed: set[str] = set()

        async def late_ack(emitted: list[Emitted]) -> None:
            await publish_all(emitted)
            outcomes = [e for e in emitted if isinstance(e, Event) and e.type == T.UPGRADE_SUCCEEDED]
            if outcomes and outcomes[0].target not in failed:
                failed.add(outcomes[0].target or "")
                raise TimeoutError("publish ack late (injected)")

        nats_bus._publish_all = late_ack
        await _everything_twice(p)
        assert failed == set(TARGETS), "every target's advance ran twice"


async def _drop_then_reconcile(p: Pipeline, kind: str) -> None:
    name = KINDS[kind]
    _, sim_id, _from, to_v, _ = TARGETS[name]
    if kind == "ncloud-kafka":  # NAVER wants a passing precheck right before the upgrade
        target = p.fleet.target(name)
        assert await p.runtime.clouds.ncloud.precheck(target.cluster, int(to_v), target.config_group)
    await p.faults({SERVICE[kind]: {"drop_after_commit_rate": 1.0}})
    await p.runtime.bus.publish(p.request(name, "upgrade"))
    # the vendor took the call and started the job; its answer (and every later one) was dropped
    await until(lambda: p.sim.state.stats.calls.get(UPGRADE_ENDPOINT[kind], {}).get(sim_id) == 1)
    await until(lambda: p.sim.state.stats.faults[SERVICE[kind]].get("drop_after_commit", 0) >= 2)
    await p.faults({SERVICE[kind]: None})
    outcome = await p.outcome(name, 60)
    assert outcome.type == T.UPGRADE_SUCCEEDED, outcome
    assert (await p.stats())[UPGRADE_ENDPOINT[kind]] == {sim_id: 1}
    target = p.sim.target(kind, sim_id)
    p.sim.state.refresh(target)
    assert target.version == to_v
    run = await p.store.ledger.run(run_id(name, to_v))
    assert run["upgrade_calls"] == 1 and run["stages"]["upgrade"]["state"] == "succeeded"


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_commit_then_drop_is_reconciled_not_called_again(tmp_path: Path, kind: str) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        await _drop_then_reconcile(p, kind)


async def test_commit_then_drop_on_nats(nats_server, namespace: str) -> None:
    async with pipeline(f"{nats_server.url}?namespace={namespace}") as p:
        await _drop_then_reconcile(p, "cce")


async def test_a_claim_left_by_a_dead_attempt_is_waited_for_then_reconciled(tmp_path: Path) -> None:
    # An attempt claimed the upgrade and died before calling: its claim is never recorded.
    async with pipeline(f"sqlite:///{tmp_path}/u.db", settings={"claim_lease_s": 1.0}) as p:
        name = KINDS["starrocks"]
        _, sim_id, _from, to_v, _ = TARGETS[name]
        dead = await p.store.claims.claim(claim_key(name, "upgrade", to_v), "starrocks_upgrade/dead-worker")
        assert dead.won
        await p.runtime.bus.publish(p.request(name, "upgrade"))
        # while the claim might still belong to a call in flight, nobody calls
        for _ in range(200):  # the first delivery has run once it opened the run in the ledger
            if await p.store.ledger.run(run_id(name, to_v)) is not None:
                break
            await asyncio.sleep(0.005)
        assert "taurusdb.upgrade" not in await p.stats()
        outcome = await p.outcome(name, 60)
        assert outcome.type == T.UPGRADE_SUCCEEDED
        # past the lease the vendor was asked (instance version/status), showed nothing, and got one call
        stats = await p.stats()
        assert stats["taurusdb.upgrade"] == {sim_id: 1}
        assert stats["taurusdb.instance"][sim_id] >= 1
        claim = await p.store.claims.get(claim_key(name, "upgrade", to_v))
        assert claim is not None and claim.state == "recorded" and claim.owner != dead.owner
