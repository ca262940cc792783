"""The exactly-once defects found by killing processes at chosen instants and by a vendor that
misbehaves like a real one — one test each, every one failing on the engine before the fix.

"Killed between a write and the outbox commit" is exercised exactly: the handler runs, its
output is thrown away (as the dead process's was), and the redelivery runs it again.
"""

from __future__ import annotations

from typing import Any

import pytest

from events import Event, T
from events.catalog import DeadLettered, StageFailed, StageSucceeded
from events.envelope import new_id
from functions.advance import advance
from functions.stages.cce_upgrade import cce_upgrade
from shared.domain.stages import STAGES, run_id
from shared.store import claim_key
from tests.functions._stages_harness import (
    CLIENT,
    KINDS,
    TARGETS,
    UPGRADE_ENDPOINT,
    Pipeline,
    pipeline,
    until,
)


@pytest.fixture(autouse=True)
def _creds(stage_creds) -> None:
    """Every test here talks to the simulator with its credentials."""


def ids(events: list[Any]) -> list[str]:
    return [getattr(e, "event", e).id for e in events]


async def open_run(p: Pipeline, name: str) -> str:
    kind, _id, from_v, to_v, _ = TARGETS[name]
    rid = run_id(name, to_v)
    await p.store.ledger.open_run(
        rid, target=name, kind=kind, from_version=from_v, to_version=to_v, state="running"
    )
    return rid


def stage_event(name: str, type_: str, stage: str, **data: Any) -> Event:
    kind, _id, _from, to_v, _ = TARGETS[name]
    model = StageSucceeded if type_ == T.STAGE_SUCCEEDED else StageFailed
    body = model(target=name, kind=kind, stage=stage, to_version=to_v, **data)
    return Event(type=type_, data=body, runid=run_id(name, to_v), target=name, kind=kind, stage=stage)


# 1. advance wrote the run's end state, then died before its outbox committed --------------------


@pytest.mark.parametrize("outcome", [T.STAGE_SUCCEEDED, T.STAGE_FAILED])
async def test_advance_replays_the_outcome_it_wrote(tmp_path, outcome: str) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        name = KINDS["cce"]
        rid = await open_run(p, name)
        extra = (
            {"code": "upgrade.failed", "message": "nodes did not come back"}
            if outcome == T.STAGE_FAILED
            else {}
        )
        event = stage_event(
            name, outcome, STAGES["cce"][-1] if outcome == T.STAGE_SUCCEEDED else "upgrade", **extra
        )
        ctx = p.runtime.context("advance")
        first = await advance(event, ctx)  # the ledger now says the run ended …
        assert (await p.store.ledger.run(rid))["state"] in ("succeeded", "failed")
        again = await advance(event.model_copy(update={"id": new_id()}), ctx)  # … and the outbox never did
        assert again and ids(again) == ids(first)
        want = T.UPGRADE_SUCCEEDED if outcome == T.STAGE_SUCCEEDED else T.UPGRADE_FAILED
        assert [e.type for e in again] == [want]
        assert again[0].data == first[0].data


# 2. the upgrade call timed out, but the slow vendor had applied it; its list lags ----------------


async def test_a_timed_out_call_the_vendor_applied_is_adopted_not_repeated(tmp_path) -> None:
    # The client gives up after 2 s; the vendor answers after 4 s, having started the job at once,
    # and lists it only 3 s later. Settle (4 s) outlasts the list's lag.
    client = CLIENT.replace("settle_s: 0.5", "settle_s: 4")
    faults = {
        "cce.upgrade": {"apply_then_slow_rate": 1.0, "apply_then_slow_s": 4.0},
        "cce": {"list_lag_s": 3.0},
    }
    # a long job (10 s real): still running when the call is reconciled, so the version says nothing
    async with pipeline(f"sqlite:///{tmp_path}/u.db", client=client, job_seconds=6000) as p:
        name = KINDS["cce"]
        await p.faults(faults)
        await p.runtime.bus.publish(p.request(name, "upgrade"))
        outcome = await p.outcome(name, 90)
        assert outcome.type == T.UPGRADE_SUCCEEDED, outcome
        assert (await p.stats())["cce.upgrade"] == {TARGETS[name][1]: 1}


# 3. a permanent error while reconciling fails the stage, it is not retried 20 times -------------


async def test_a_permanent_error_while_reconciling_fails_the_run(tmp_path) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db", settings={"claim_lease_s": 0.5}) as p:
        name = KINDS["starrocks"]
        _, _, _, to_v, _ = TARGETS[name]
        dead = await p.store.claims.claim(claim_key(name, "upgrade", to_v), "starrocks_upgrade/dead")
        assert dead.won
        # the vendor does not know the instance any more (as the demo fleet's wrong id once did)
        await p.faults({"taurusdb.instance": {"error_rates": {"404": 1.0}}})
        await p.runtime.bus.publish(p.request(name, "upgrade"))
        outcome = await p.outcome(name, 60)
        assert outcome.type == T.UPGRADE_FAILED and outcome.data.stage == "upgrade"
        run = await p.store.ledger.run(run_id(name, to_v))
        assert run["state"] == "failed"
        assert "taurusdb.upgrade" not in await p.stats()


# 4. StarRocks: killed after the vendor accepted, before the job id was recorded; the job failed --


async def test_starrocks_a_lost_failed_job_is_adopted_not_called_again(tmp_path) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db", settings={"claim_lease_s": 0.5}) as p:
        name = KINDS["starrocks"]
        _, sim_id, from_v, to_v, _ = TARGETS[name]
        p.sim.target("starrocks", sim_id).outcome = "fail"
        dead = await p.store.claims.claim(claim_key(name, "upgrade", to_v), "starrocks_upgrade/dead")
        target = p.fleet.target(name)
        job = await p.runtime.clouds.taurusdb.upgrade_starrocks(target.instance_id)  # its call; then it died
        await until(lambda: p.sim.state.jobs[job].outcome(p.sim.state.clock.now()) == "failed", 30)
        sim_target = p.sim.target("starrocks", sim_id)
        p.sim.state.refresh(sim_target)
        assert sim_target.version == from_v  # back to normal, at the old version
        assert dead.won
        await p.runtime.bus.publish(p.request(name, "upgrade"))
        outcome = await p.outcome(name, 60)
        assert outcome.type == T.UPGRADE_FAILED, outcome
        assert (await p.stats())["taurusdb.upgrade"] == {sim_id: 1}
        claim = await p.store.claims.get(claim_key(name, "upgrade", to_v))
        assert claim is not None and claim.state == "recorded" and claim.job_id == job


# 5. "recent" judged on the vendor's clock: a skewed vendor's failed task is ours ---------------


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
async def test_a_failed_task_of_a_skewed_vendor_is_adopted(tmp_path, skew: float) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db", settings={"claim_lease_s": 0.5}) as p:
        name = KINDS["cce"]
        _, sim_id, _, to_v, _ = TARGETS[name]
        await p.faults({"cce": {"clock_skew_s": skew}})
        p.sim.target("cce", sim_id).outcome = "fail"
        await p.store.claims.claim(claim_key(name, "upgrade", to_v), "cce_upgrade/dead")
        target = p.fleet.target(name)
        task = await p.runtime.clouds.cce.upgrade(
            target.cluster_id, to_v, user_defined_step=20
        )  # then it died
        job = p.sim.state.jobs[task.metadata.uid]
        await until(
            lambda: job.outcome(p.sim.state.clock.now()) == "failed", 30
        )  # failed before anyone looks
        await p.runtime.bus.publish(p.request(name, "upgrade"))
        outcome = await p.outcome(name, 60)
        assert outcome.type == T.UPGRADE_FAILED, outcome
        assert (await p.stats())["cce.upgrade"] == {sim_id: 1}


# 6. a refusal is remembered before the outbox commits ------------------------------------------


async def test_a_refused_call_is_not_made_again_by_the_redelivery(tmp_path) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        name = KINDS["cce"]
        event = p.request(name, "upgrade")
        bad = event.model_copy(
            update={
                "data": event.data.model_copy(update={"to_version": "v1.35.0-r0"}),
                "runid": run_id(name, "v1.35.0-r0"),
            }
        )
        ctx = p.runtime.context("cce_upgrade")
        first = await cce_upgrade(bad, ctx)  # refused by the vendor … and the outbox never committed
        again = await cce_upgrade(bad.model_copy(update={"id": new_id()}), ctx)
        assert [e.type for e in first] == [T.STAGE_FAILED] and ids(again) == ids(first)
        assert again[0].data.code == "CCE.01400001"
        assert (await p.stats())["cce.upgrade"] == {TARGETS[name][1]: 1}


# 7. "already in progress" naming our own work is adopted ----------------------------------------


async def test_an_already_in_progress_workflow_of_ours_is_adopted(tmp_path) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        name = KINDS["autopilot"]
        _, sim_id, _, to_v, _ = TARGETS[name]
        target = p.fleet.target(name)
        # an earlier attempt created the workflow; its answer was lost and its claim released
        await p.runtime.clouds.autopilot.create_workflow(target.cluster_id, to_v)
        await p.start(name)
        outcome = await p.outcome(name, 90)
        assert outcome.type == T.UPGRADE_SUCCEEDED, outcome
        stats = await p.stats()
        assert stats[UPGRADE_ENDPOINT["autopilot"]] == {sim_id: 1}
        run = await p.store.ledger.run(run_id(name, to_v))
        assert run["stages"]["workflow"]["state"] == "succeeded"


# dead letters end runs -------------------------------------------------------------------------


async def test_a_dead_letter_fails_its_run_and_is_reported(tmp_path) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        name = KINDS["oceanbase"]
        kind, _id, _from, to_v, _ = TARGETS[name]
        rid = await open_run(p, name)
        data = DeadLettered(
            consumer="oceanbase_upgrade",
            event_type=T.STAGE_REQUESTED,
            event_id="e1",
            attempts=20,
            error="TransientCloudError: ocp (HTTP 503)",
            target=name,
            kind=kind,
            stage="upgrade",
            to_version=to_v,
        )
        notice = Event(
            type=T.EVENT_DEAD_LETTERED, data=data, runid=rid, target=name, kind=kind, stage="upgrade"
        )
        await p.runtime.bus.publish(notice)
        outcome = await p.outcome(name, 30)
        assert outcome.type == T.UPGRADE_FAILED and outcome.data.code == "dead_letter"
        assert "oceanbase_upgrade gave up" in outcome.data.message
        run = await p.store.ledger.run(rid)
        assert run["state"] == "failed" and run["code"] == "dead_letter"
        # a replay of the notice emits the same upgrade.failed (same id)
        again = await advance(notice.model_copy(update={"id": new_id()}), p.runtime.context("advance"))
        assert ids(again) == [outcome.id]
