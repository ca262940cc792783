"""The simulated CCE / Autopilot as strict as the pages: mandatory fields, fixed values and enums
refused with CCE's error body; the documented shapes of upgradeinfo, clusterupgradepaths, the
pre-check items and the v3.1 snapshot; the task and workflow state machines. Raw HTTP, no client."""

from __future__ import annotations

import copy

import aiohttp
import pytest

from simulator.core import SimTarget
from simulator.testing import run_simulator
from tests.simulator._vendor import Vendor

CCE = "7378a198-4b2c-11ef-9a5e-0255ac100b01"
AP = "9e1f0c2a-5d3b-11ef-8f1c-0255ac100c01"
CLUSTER = "/api/v3/projects/{p}/clusters/" + CCE
AP_CLUSTER = "/autopilot/v3/projects/{p}/clusters/" + AP
UPGRADE = {
    "metadata": {"apiVersion": "v3", "kind": "UpgradeTask"},
    "spec": {
        "clusterUpgradeAction": {
            "targetVersion": "v1.29",
            "strategy": {"type": "inPlaceRollingUpdate", "inPlaceRollingUpdate": {"userDefinedStep": 20}},
        }
    },
}


def targets() -> list[SimTarget]:
    return [
        SimTarget("cce-a", "cce", CCE, "v1.28.5-r0", ["v1.29.3-r0", "v1.30.1-r2"], job_seconds=600),
        SimTarget("ap-a", "autopilot", AP, "v1.28.5-r0", ["v1.29.3-r0"], job_seconds=600),
    ]


@pytest.fixture
async def v():
    async with run_simulator(targets=targets(), speed=1.0) as sim, aiohttp.ClientSession() as http:
        yield Vendor(sim, http)


def precheck_body(cluster: str = CCE, version: str = "v1.28.5-r0", target: str = "v1.29") -> dict:
    return {
        "apiVersion": "v3",
        "kind": "PreCheckTask",
        "spec": {"clusterID": cluster, "clusterVersion": version, "targetVersion": target},
    }


def without(doc: dict, *path: str) -> dict:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def with_value(doc: dict, value: object, *path: str) -> dict:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


ACTION = ("spec", "clusterUpgradeAction")
ROLLING = (*ACTION, "strategy", "inPlaceRollingUpdate")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (None, "body"),
        (without(UPGRADE, "metadata"), "metadata"),
        (with_value(UPGRADE, "v2", "metadata", "apiVersion"), "metadata.apiVersion"),
        (with_value(UPGRADE, "Upgrade", "metadata", "kind"), "metadata.kind"),
        (without(UPGRADE, *ACTION), "spec.clusterUpgradeAction"),
        (without(UPGRADE, *ACTION, "strategy"), "spec.clusterUpgradeAction.strategy"),
        (with_value(UPGRADE, "blueGreen", *ACTION, "strategy", "type"), "strategy.type"),
        (without(UPGRADE, *ROLLING, "userDefinedStep"), "userDefinedStep"),
        (with_value(UPGRADE, 0, *ROLLING, "userDefinedStep"), "userDefinedStep"),
        (with_value(UPGRADE, 121, *ROLLING, "userDefinedStep"), "userDefinedStep"),
        (with_value(UPGRADE, "20", *ROLLING, "userDefinedStep"), "userDefinedStep"),
        (with_value(UPGRADE, "Zone", *ROLLING, "scope"), "scope"),
        (with_value(UPGRADE, "1.29", *ACTION, "targetVersion"), "targetVersion"),
        (
            with_value(UPGRADE, [{"addonTemplateName": "coredns", "version": "1"}], *ACTION, "addons"),
            "operation",
        ),
        (
            with_value(UPGRADE, [{"operation": "patch", "version": "1"}], *ACTION, "addons"),
            "addonTemplateName",
        ),
        (with_value(UPGRADE, {"DefaultPool": -1}, *ACTION, "nodePoolOrder"), "nodePoolOrder"),
        (
            with_value(
                UPGRADE,
                {"p": [{"nodeSelector": {"key": "k", "operator": "In"}, "priority": 1}]},
                *ACTION,
                "nodeOrder",
            ),
            "operator",
        ),
        (
            with_value(
                UPGRADE, {"p": [{"nodeSelector": {"key": "k", "operator": "in"}}]}, *ACTION, "nodeOrder"
            ),
            "priority",
        ),
        (with_value(UPGRADE, "yes", *ACTION, "isOnlyUpgrade"), "isOnlyUpgrade"),
    ],
)
async def test_upgrade_bodies_off_the_page_are_refused_naming_the_field(v, body, field) -> None:
    r = await v.hw("POST", CLUSTER + "/operation/upgrade", json=body)
    error = await r.json()
    assert r.status == 400 and set(error) == {"errorCode", "errorMessage"}
    assert error["errorCode"] == "CCE.01400001" and field in error["errorMessage"], error
    assert not v.sim.state.jobs


async def test_a_complete_upgrade_body_is_taken(v) -> None:
    body = with_value(UPGRADE, {"DefaultPool": 0}, *ACTION, "nodePoolOrder")
    body = with_value(
        body, [{"addonTemplateName": "coredns", "operation": "patch", "version": "1.30.6"}], *ACTION, "addons"
    )
    body = with_value(body, True, *ACTION, "isOnlyUpgrade")
    body = with_value(body, "NodePool", *ROLLING, "scope")
    r = await v.hw("POST", CLUSTER + "/operation/upgrade", json=body)
    answer = await r.json()
    assert r.status == 200 and answer["metadata"]["uid"]
    assert answer["spec"]["clusterUpgradeAction"]["targetVersion"] == "v1.29.3-r0"


async def test_autopilot_takes_either_key_and_an_absent_strategy(v) -> None:
    body = {
        "metadata": UPGRADE["metadata"],
        "spec": {"autopilotClusterUpgradeAction": {"targetVersion": "v1.29"}},
    }
    r = await v.hw("POST", AP_CLUSTER + "/operation/upgrade", json=body)
    assert r.status == 200
    r = await v.hw("POST", AP_CLUSTER + "/operation/upgrade", json={"spec": body["spec"]})
    assert r.status == 400 and "metadata" in (await r.json())["errorMessage"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (without(precheck_body(), "spec", "clusterID"), "spec.clusterID"),
        (without(precheck_body(), "spec", "clusterVersion"), "spec.clusterVersion"),
        (without(precheck_body(), "spec", "targetVersion"), "spec.targetVersion"),
        (with_value(precheck_body(), "PostCheckTask", "kind"), "kind"),
        (without(precheck_body(), "apiVersion"), "apiVersion"),
        (precheck_body(version="v1.27.1-r0"), "clusterVersion"),
        (
            with_value(
                precheck_body(),
                [{"name": "x", "resourceSelector": {"key": "node.name", "operator": "In"}}],
                "spec",
                "skippedCheckItemList",
            ),
            "resourceSelector.key",
        ),
    ],
)
async def test_precheck_bodies_off_the_page_are_refused(v, body, field) -> None:
    r = await v.hw("POST", CLUSTER + "/operation/precheck", json=body)
    error = await r.json()
    assert r.status == 400 and error["errorCode"] == "CCE.01400001" and field in error["errorMessage"], error


async def test_precheck_phases_and_failed_items(v) -> None:
    v.sim.target("cce").extra["precheck"] = "fail"
    r = await v.hw("POST", CLUSTER + "/operation/precheck", json=precheck_body())
    task = await r.json()
    assert r.status == 200 and task["status"]["phase"] == "Init"
    path = CLUSTER + f"/operation/precheck/tasks/{task['metadata']['uid']}"
    v.sim.state.clock.advance(10)
    assert (await (await v.hw("GET", path)).json())["status"]["phase"] == "Running"
    v.sim.state.clock.advance(30)
    status = (await (await v.hw("GET", path)).json())["status"]
    assert status["phase"] == "Failed" and status["message"]
    node = status["nodeCheckStatus"]["nodeStageStatus"][0]
    assert set(node["nodeInfo"]) == {"uid", "name", "status", "nodeType"}
    item = node["itemsStatus"][0]
    assert {item["kind"], item["group"], item["level"], item["phase"]} == {
        "Exception",
        "NodeCheck",
        "Fatal",
        "Failed",
    }
    assert item["errorCodes"] and item["name"] and item["message"]
    addon = status["addonCheckStatus"]["itemsStatus"][0]
    assert (addon["kind"], addon["level"]) == ("Risk", "Warning")
    assert status["clusterCheckStatus"] == {"phase": "Failed", "itemsStatus": []}


async def test_passed_precheck_says_until_when(v) -> None:
    task = await (await v.hw("POST", CLUSTER + "/operation/precheck", json=precheck_body())).json()
    v.sim.state.clock.advance(31)
    status = (
        await (await v.hw("GET", CLUSTER + f"/operation/precheck/tasks/{task['metadata']['uid']}")).json()
    )["status"]
    assert status["phase"] == "Success" and status["expireTimeStamp"]
    assert status["nodeCheckStatus"] == {"phase": "Success", "nodeStageStatus": []}


async def test_upgradeinfo_and_paths_have_the_sdk_shapes(v) -> None:
    info = await (await v.hw("GET", CLUSTER + "/upgradeinfo")).json()
    assert info["spec"]["versionInfo"] == {
        "release": "v1.28.5",
        "patch": "r0",
        "suggestPatch": "r0",
        "targetVersions": ["v1.29.3-r0", "v1.30.1-r2"],
    }
    assert "lastUpgradeInfo" not in info["spec"]
    await v.hw("POST", CLUSTER + "/operation/upgrade", json=UPGRADE)
    v.sim.state.clock.advance(300)
    last = (await (await v.hw("GET", CLUSTER + "/upgradeinfo")).json())["spec"]["lastUpgradeInfo"]
    assert last["phase"] == "Running" and last["progress"] == "50"
    paths = await (await v.hw("GET", "/api/v3/clusterupgradepaths")).json()
    assert paths["upgradePaths"] == [
        {"version": "v1.28", "platformVersion": "cce.10.0", "targetVersions": ["v1.29", "v1.30"]}
    ]


async def test_snapshot_answers_a_top_level_uid_and_lists_items_with_metadata(v) -> None:
    r = await v.hw("POST", "/api/v3.1/projects/{p}/clusters/" + CCE + "/operation/snapshot")
    created = await r.json()
    assert (
        r.status == 200
        and set(created) == {"uid", "metadata"}
        and created["metadata"]["apiVersion"] == "v3.1"
    )
    listing = await (
        await v.hw("GET", "/api/v3.1/projects/{p}/clusters/" + CCE + "/operation/snapshot/tasks")
    ).json()
    assert set(listing) >= {"apiVersion", "kind", "metadata", "items", "status"}
    (item,) = listing["items"]
    assert item["metadata"]["uid"] == created["uid"] and item["status"]["phase"] == "Init"
    assert item["spec"]["items"][0]["type"] == "master-backup"
    v.sim.state.clock.advance(61)
    listing = await (
        await v.hw("GET", "/api/v3.1/projects/{p}/clusters/" + CCE + "/operation/snapshot/tasks")
    ).json()
    assert listing["items"][0]["status"]["phase"] == "Success" and listing["status"]["latestBackupTime"]
    r = await v.hw(
        "POST", "/api/v3.1/projects/{p}/clusters/" + CCE + "/operation/snapshot", json={"force": True}
    )
    assert r.status == 400 and "no body" in (await r.json())["errorMessage"]


async def test_controls_take_no_body_and_answer_none(v) -> None:
    await v.hw("POST", CLUSTER + "/operation/upgrade", json=UPGRADE)
    r = await v.hw("POST", CLUSTER + "/operation/upgrade/pause", json={"now": True})
    assert r.status == 400
    r = await v.hw("POST", CLUSTER + "/operation/upgrade/pause")
    assert r.status == 200 and r.headers["Content-Length"] == "0"


async def test_workflow_state_machine_pending_then_cancel(v) -> None:
    v.sim.target("autopilot").extra["precheck"] = "fail"
    base = AP_CLUSTER + "/operation/upgradeworkflows"
    for bad, field in (
        ({"kind": "WorkFlowTask", "apiVersion": "v3", "spec": {"targetVersion": "v1.29"}}, "spec.clusterID"),
        ({"kind": "WorkFlowTask", "spec": {"clusterID": AP, "targetVersion": "v1.29"}}, "apiVersion"),
        (
            {"kind": "Workflow", "apiVersion": "v3", "spec": {"clusterID": AP, "targetVersion": "v1.29"}},
            "kind",
        ),
    ):
        r = await v.hw("POST", base, json=bad)
        assert r.status == 400 and field in (await r.json())["errorMessage"]
    body = {"kind": "WorkFlowTask", "apiVersion": "v3", "spec": {"clusterID": AP, "targetVersion": "v1.29"}}
    wf = await (await v.hw("POST", base, json=body)).json()
    uid = wf["metadata"]["uid"]
    assert wf["status"]["phase"] == "Init"
    assert [p["taskType"] for p in wf["status"]["pointStatuses"]] == [
        "PreCheck",
        "Snapshot",
        "Cluster",
        "PostCheck",
    ]
    await v.hw("POST", AP_CLUSTER + "/operation/precheck", json=precheck_body(AP))
    status = (await (await v.hw("GET", f"{base}/{uid}")).json())["status"]
    assert status["phase"] == "Running" and status["pointStatuses"][0]["status"] == "Init"
    r = await v.hw("PATCH", f"{base}/{uid}", json={"status": {"phase": "Cancel"}})
    assert r.status == 400  # a task of it is running
    v.sim.state.clock.advance(31)
    status = (await (await v.hw("GET", f"{base}/{uid}")).json())["status"]
    assert status["phase"] == "Pending" and status["pointStatuses"][0]["status"] == "Failed"
    assert (await v.hw("POST", base, json=body)).status == 409  # still open
    r = await v.hw("PATCH", f"{base}/{uid}", json={"status": {"phase": "Running"}})
    assert r.status == 400
    assert (await (await v.hw("PATCH", f"{base}/{uid}", json={"status": {"phase": "Cancel"}})).json())[
        "status"
    ]["phase"] == "Cancel"
    r = await v.hw("PATCH", f"{base}/{uid}", json={"status": {"phase": "Cancel"}})
    assert r.status == 400 and "Cancel" in (await r.json())["errorMessage"]
    assert (await v.hw("POST", base, json=body)).status == 201  # a cancelled one is closed


async def test_upgrade_task_phases_init_queuing_running_pause_success(v) -> None:
    uid = (await (await v.hw("POST", CLUSTER + "/operation/upgrade", json=UPGRADE)).json())["metadata"]["uid"]
    path = CLUSTER + f"/operation/upgrade/tasks/{uid}"

    async def phase() -> str:
        return (await (await v.hw("GET", path)).json())["status"]["phase"]

    assert await phase() == "Init"
    v.sim.state.clock.advance(12)
    assert await phase() == "Queuing"
    v.sim.state.clock.advance(100)
    assert await phase() == "Running"
    await v.hw("POST", CLUSTER + "/operation/upgrade/pause")
    v.sim.state.clock.advance(5000)
    assert await phase() == "Pause"
    await v.hw("POST", CLUSTER + "/operation/upgrade/continue")
    v.sim.state.clock.advance(600)
    assert await phase() == "Success"
