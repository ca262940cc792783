"""CCE / Autopilot stages against the strict simulator, through the real bus and runtime: the
snapshot followed by its top-level uid, fleet options on the wire, failed pre-check items in
``stage.failed``, the synchronous post-check, and an impossible target refused before any call."""

from __future__ import annotations

from pathlib import Path

import pytest

from events import T
from functions.stages._huawei import NOT_ALLOWED
from shared.domain.stages import run_id
from simulator.huawei import huawei_sim
from tests.functions._stages_harness import TARGETS, pipeline, until

CCE_ID = TARGETS["cce-a"][1]
AP_ID = TARGETS["ap-a"][1]


@pytest.fixture(autouse=True)
def _creds(stage_creds) -> None:
    """Every test here talks to the simulator with its credentials."""


@pytest.fixture
def bus_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/u.db"


def _failures(p, name: str) -> list:
    return [e.data for e in p.seen.get(T.STAGE_FAILED, []) if e.target == name]


async def _publish(p, name: str, stage: str, to_version: str | None = None) -> str:
    event = p.request(name, stage)
    if to_version is not None:
        data = event.data.model_copy(update={"to_version": to_version})
        event = event.model_copy(update={"data": data, "runid": run_id(name, to_version)})
    await p.runtime.bus.publish(event)
    return event.runid


# -- item 1: the snapshot is followed by the create's top-level uid ------------------------------


async def test_autopilot_snapshot_is_followed_to_success_by_its_uid(bus_url: str) -> None:
    async with pipeline(bus_url) as p:
        rid = await p.start("ap-a")
        assert (await p.outcome("ap-a")).type == T.UPGRADE_SUCCEEDED
        stage = (await p.store.ledger.run(rid))["stages"]["snapshot"]
        snapshots = huawei_sim(p.sim.state).snapshots
        assert list(snapshots) == [stage["job_id"]] and stage["state"] == "succeeded"
        assert stage["status_calls"] >= 1
        assert (await p.stats())["autopilot.snapshot_tasks"][AP_ID] >= stage["status_calls"]


async def test_a_failed_snapshot_fails_the_stage_with_what_its_subtask_says(bus_url: str) -> None:
    async with pipeline(bus_url) as p:
        p.sim.target("autopilot", AP_ID).extra["snapshot"] = "fail"
        await p.start("ap-a")
        outcome = await p.outcome("ap-a")
        assert outcome.type == T.UPGRADE_FAILED and outcome.data.stage == "snapshot"
        (failed,) = _failures(p, "ap-a")
        assert failed.code == "snapshot.failed" and "EVS snapshot" in failed.message
        assert failed.job_id in huawei_sim(p.sim.state).snapshots
        assert "autopilot.upgrade" not in await p.stats()


async def test_a_snapshot_whose_answer_was_lost_is_found_in_the_task_list(bus_url: str) -> None:
    faults = {"autopilot.snapshot": {"drop_after_commit_rate": 1.0}}
    async with pipeline(bus_url, sim_faults=faults) as p:
        rid = await p.start("ap-a")
        assert (await p.outcome("ap-a", 90)).type == T.UPGRADE_SUCCEEDED
        snapshots = huawei_sim(p.sim.state).snapshots
        assert len(snapshots) == 1  # adopted from the list, not taken again
        assert (await p.store.ledger.run(rid))["stages"]["snapshot"]["job_id"] in snapshots


# -- item 2: fleet options reach the upgrade body ---------------------------------------------


async def test_fleet_options_are_sent_as_the_sdk_names_them(bus_url: str, monkeypatch) -> None:
    kind, sim_id, from_v, to_v, fields = TARGETS["cce-a"]
    options = (
        ", strategy: {{user_defined_step: 7}}, cce: {{scope: NodePool, is_only_upgrade: true,"
        " node_pool_order: {{DefaultPool: 1}},"
        " node_order: {{DefaultPool: [{{node_selector: {{key: role, value: [edge], operator: in}}, priority: 2}}]}},"
        " addons: [{{addon_template_name: coredns, version: 1.30.6}}]}}"
    )
    monkeypatch.setitem(TARGETS, "cce-a", (kind, sim_id, from_v, to_v, fields + options))
    async with pipeline(bus_url) as p:
        rid = await p.start("cce-a")
        assert (await p.outcome("cce-a")).type == T.UPGRADE_SUCCEEDED
        job_id = (await p.store.ledger.run(rid))["stages"]["upgrade"]["job_id"]
        action = p.sim.state.jobs[job_id].extra["action"]
        assert action["strategy"] == {
            "type": "inPlaceRollingUpdate",
            "inPlaceRollingUpdate": {"userDefinedStep": 7, "scope": "NodePool"},
        }
        assert action["isOnlyUpgrade"] is True and action["nodePoolOrder"] == {"DefaultPool": 1}
        assert action["nodeOrder"] == {
            "DefaultPool": [
                {"nodeSelector": {"key": "role", "operator": "in", "value": ["edge"]}, "priority": 2}
            ]
        }
        assert action["addons"] == [
            {"addonTemplateName": "coredns", "operation": "patch", "version": "1.30.6"}
        ]


# -- item 3: a failed pre-check says why ------------------------------------------------------


@pytest.mark.parametrize("name", ["cce-a", "ap-a"])
async def test_a_failed_precheck_reports_its_items_and_code(bus_url: str, name: str) -> None:
    kind, sim_id, *_ = TARGETS[name]
    async with pipeline(bus_url) as p:
        p.sim.target(kind, sim_id).extra["precheck"] = "fail"
        await p.start(name)
        outcome = await p.outcome(name)
        assert outcome.type == T.UPGRADE_FAILED and outcome.data.stage == "precheck"
        (failed,) = _failures(p, name)
        assert failed.code == "Node.0002" and failed.job_id
        assert failed.message.startswith("2 check item(s) failed, 1 must be fixed before upgrading; ")
        assert (
            "[Exception/Fatal NodeCheck] NodeStatus (node node-1): node 192.168.0.12 is NotReady"
            in failed.message
        )
        assert "[Risk/Warning AddonCheck] AddonCompatibility" in failed.message
        assert "(errorCodes: Node.0002)" in failed.message and "(errorCodes: Addon.0106)" in failed.message
        assert f"{kind}.upgrade" not in await p.stats()


# -- item 4: the post-check is one synchronous call --------------------------------------------


async def test_the_postcheck_is_one_call_and_no_job(bus_url: str) -> None:
    async with pipeline(bus_url) as p:
        rid = await p.start("cce-a")
        assert (await p.outcome("cce-a")).type == T.UPGRADE_SUCCEEDED
        stage = (await p.store.ledger.run(rid))["stages"]["postcheck"]
        assert stage["state"] == "succeeded" and "status_calls" not in stage
        assert not [e for e in p.seen.get(T.STAGE_STARTED, []) if e.stage == "postcheck"]
        assert (await p.stats())["cce.postcheck"] == {CCE_ID: 1}


async def test_a_failed_postcheck_fails_the_stage_at_once(bus_url: str) -> None:
    async with pipeline(bus_url) as p:
        await _publish(p, "ap-a", "postcheck")  # the cluster is still on its old version
        outcome = await p.outcome("ap-a")
        assert outcome.type == T.UPGRADE_FAILED and outcome.data.stage == "postcheck"
        (failed,) = _failures(p, "ap-a")
        assert failed.code == "postcheck.failed" and "Failed" in failed.message
        assert (await p.stats())["autopilot.postcheck"] == {AP_ID: 1}


# -- item 5: a target CCE does not offer is refused before anything starts ---------------------


@pytest.mark.parametrize(("name", "first"), [("cce-a", "precheck"), ("ap-a", "workflow")])
async def test_an_impossible_target_is_refused_by_the_first_stage(
    bus_url: str, name: str, first: str
) -> None:
    kind, sim_id, from_v, to_v, _ = TARGETS[name]
    async with pipeline(bus_url) as p:
        await _publish(p, name, first, "v1.35")
        outcome = await p.outcome(name)
        assert outcome.type == T.UPGRADE_FAILED and outcome.data.stage == first
        (failed,) = _failures(p, name)
        assert failed.code == NOT_ALLOWED
        assert f"v1.35 is not an upgrade target of cluster {sim_id} at {from_v}" in failed.message
        assert f"CCE offers {to_v}" in failed.message
        stats = await p.stats()
        assert stats[f"{kind}.upgradeinfo"] == {sim_id: 1}
        assert not {f"{kind}.precheck", f"{kind}.upgrade", "autopilot.workflow"} & set(stats)
        assert huawei_sim(p.sim.state).workflows == {}


async def test_without_targets_in_upgradeinfo_the_region_paths_decide(bus_url: str) -> None:
    async with pipeline(bus_url) as p:
        p.sim.target("cce", CCE_ID).extra["upgradeinfo"] = "no_targets"
        await _publish(p, "cce-a", "precheck", "v1.35")
        assert (await p.outcome("cce-a")).type == T.UPGRADE_FAILED
        (failed,) = _failures(p, "cce-a")
        assert failed.code == NOT_ALLOWED and "CCE offers v1.29 (clusterupgradepaths)" in failed.message
        stats = await p.stats()
        assert stats["cce.upgrade_paths"] == {"*": 1} and "cce.precheck" not in stats
        # and a target on the region's path goes ahead
        rid = await p.start("cce-a")
        await until(lambda: any(e.runid == rid for e in p.outcomes()), 60)
        assert next(e for e in p.outcomes() if e.runid == rid).type == T.UPGRADE_SUCCEEDED
