"""Fault injection over real loopback HTTP: per-operation scoping, apply-then-slow, apply-then-5xx,
commit-then-drop, list lag and clock skew (with the ``Date`` header every answer carries)."""

from __future__ import annotations

import asyncio
import math
import time

import aiohttp
import pytest

from simulator.core import FaultSet, SimJob
from simulator.testing import run_simulator
from tests.simulator._vendor import Vendor, epoch_of, header_epoch

#: 2023-01-18T00:00:00Z: far from the wall clock, so a Date from the real clock would show.
START = 1_674_000_000.0
CCE = "7378a198-4b2c-11ef-9a5e-0255ac100b01"  # v1.28 -> v1.29...
CCE_B = "7378a198-4b2c-11ef-9a5e-0255ac100b02"  # v1.29 -> v1.30...
AP = "9e1f0c2a-5d3b-11ef-8f1c-0255ac100c01"
SR = "5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17"
#: ListStarrocksInstanceInfo wants a well-formed TaurusDB id (32 letters or digits + in07) first;
#: SR's target knows none, so any such id will do.
SR_INSTANCE = f"/v3/{{p}}/instances/{'0' * 32}in07/starrocks/{SR}"
OB = "22"
KAFKA = 3432149
CCE_BASE = "/api/v3/projects/{p}/clusters/"
AP_WF = "/autopilot/v3/projects/{p}/clusters/" + AP + "/operation/upgradeworkflows"
KAFKA_BODY = {
    "serviceGroupInstanceNo": KAFKA,
    "upgradeKafkaVersionCode": 3503006,
    "upgradeConfigGroupNo": 170,
}
OB_BODY = {"destVersion": "4.2.1.8-108000022024072217", "operatingSystem": "el7"}

#: every operation the routes register: the fault keys below the service level
OPERATIONS = {
    "iam.tokens",
    "taurusdb.upgrade",
    "taurusdb.jobs",
    "taurusdb.jobs_list",
    "taurusdb.scheduled_jobs",
    "taurusdb.instance",
    *(
        f"{s}.{op}"
        for s in ("cce", "autopilot")
        for op in (
            "cluster",
            "precheck",
            "upgrade",
            "upgrade_tasks",
            "upgrade_task",
            "upgradeinfo",
            "upgrade_paths",
            "upgrade_retry",
            "postcheck",
            "snapshot",
            "snapshot_tasks",
        )
    ),
    "cce.upgrade_pause",
    "cce.upgrade_continue",
    "autopilot.workflow",
    "autopilot.workflows",
    "autopilot.workflow_cancel",
    "ocp.upgrade",
    "ocp.get_cluster",
    "ocp.list_tasks",
    "ocp.get_task",
    "ocp.retry",
    "ocp.rollback",
    "ocp.subtask_log",
    "ncloud.precheck",
    "ncloud.upgrade",
    "ncloud.upgrade_progress",
    "ncloud.cluster_info",
    "ncloud.cluster_list",
    "ncloud.cluster_status",
    "ncloud.versions",
    "ncloud.config_groups",
}


@pytest.fixture
async def v():
    # speed 1: a 600 s job cannot finish during a test unless the test advances the clock
    async with run_simulator(speed=1.0, start=START) as sim, aiohttp.ClientSession() as http:
        yield Vendor(sim, http)


def cce_upgrade(v: Vendor, cluster: str = CCE, version: str = "v1.29", **kw):
    strategy = {"type": "inPlaceRollingUpdate", "inPlaceRollingUpdate": {"userDefinedStep": 20}}
    body = {
        "metadata": {"apiVersion": "v3", "kind": "UpgradeTask"},
        "spec": {"clusterUpgradeAction": {"targetVersion": version, "strategy": strategy}},
    }
    return v.hw("POST", CCE_BASE + cluster + "/operation/upgrade", json=body, **kw)


def unhide(job_or_record) -> None:
    """As if ten minutes of real time had passed since it was created."""
    if isinstance(job_or_record, SimJob):
        job_or_record.created_real -= 600
    else:
        job_or_record["created_real"] -= 600


async def eventually(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


# -- keys and scoping ------------------------------------------------------------------------


def test_operation_spec_beats_service_beats_star_and_keys_are_checked() -> None:
    faults = FaultSet(seed=1)
    faults.operations |= {"cce.upgrade", "cce.cluster"}
    faults.update({"*": {"latency_ms": 1}, "cce": {"latency_ms": 2}, "cce.upgrade": {"latency_ms": 3}})
    assert faults.roll("cce", "cce.upgrade").latency_s == 0.003
    assert faults.roll("cce", "cce.cluster").latency_s == 0.002
    assert faults.roll("cce").latency_s == 0.002
    assert faults.roll("ocp", "ocp.upgrade").latency_s == 0.001
    for bad in ("cce.nope", "nope.upgrade", "cce.", "nope"):
        with pytest.raises(ValueError, match=repr(bad)):
            faults.update({bad: {}})
    for bad_spec in (
        {"apply_then_slow_rate": 0.6, "apply_then_5xx_rate": 0.3, "reset_rate": 0.2},
        {"drop_after_commit_rate": 0.5, "error_rates": {"500": 0.6}},
        {"apply_then_5xx_status": 404},
        {"list_lag_s": -1},
        {"apply_then_slow_s": -1},
        {"clock_skew_s": "soon"},
    ):
        with pytest.raises(ValueError):
            faults.update({"cce": bad_spec})
    faults.update({"cce": {"clock_skew_s": -45, "list_lag_s": 1.5}})
    decision = faults.roll("cce", "cce.cluster")
    assert (decision.clock_skew_s, decision.list_lag_s) == (-45, 1.5)


async def test_operations_are_listed_and_unknown_keys_are_a_400_naming_them(v: Vendor) -> None:
    ops = await (await v.http.get(f"{v.sim.url}/_sim/operations")).json()
    assert {op for per in ops.values() for op in per} == OPERATIONS == v.sim.state.faults.operations
    for bad in ("cce.nope", "taurusdb.upgrades", "nope"):
        r = await v.http.post(f"{v.sim.url}/_sim/faults", json={bad: {"reset_rate": 0.1}})
        assert r.status == 400 and bad in (await r.json())["error"]
    r = await v.http.post(f"{v.sim.url}/_sim/faults", json={"taurusdb.jobs_list": {"list_lag_s": 2}})
    assert r.status == 200 and (await r.json())["taurusdb.jobs_list"]["list_lag_s"] == 2


async def test_unknown_operation_given_at_start_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'ocp\.upgrde'"):
        async with run_simulator(faults={"ocp.upgrde": {"reset_rate": 1.0}}):
            pass


async def test_calls_are_counted_under_their_operation_names(v: Vendor) -> None:
    await cce_upgrade(v)
    await v.hw("GET", CCE_BASE + CCE)
    await v.hw("GET", CCE_BASE + CCE + "/operation/upgrade/tasks")
    await v.hw("GET", AP_WF)
    await v.hw("POST", f"/v3/{{p}}/instances/{SR}/starrocks/db-upgrade", json={})
    await v.hw("GET", SR_INSTANCE)
    await v.hw("GET", "/v3/{p}/immediate-jobs")
    await v.ocp("GET", f"/api/v2/ob/clusters/{OB}")
    await v.ocp("GET", f"/api/v2/tasks/instances?clusterId={OB}")
    await v.ncloud("POST", f"/api/v1/cluster/getClusterInfoList/{KAFKA}")
    await v.ncloud("GET", f"/api/v1/cluster/getClusterStatus/{KAFKA}")
    calls = v.sim.state.stats.calls
    assert len(calls) == 12 and set(calls) <= OPERATIONS  # iam.tokens too
    assert set(calls) == {
        "iam.tokens",
        "cce.upgrade",
        "cce.cluster",
        "cce.upgrade_tasks",
        "autopilot.workflows",
        "taurusdb.upgrade",
        "taurusdb.instance",
        "taurusdb.jobs_list",
        "ocp.get_cluster",
        "ocp.list_tasks",
        "ncloud.cluster_info",
        "ncloud.cluster_status",
    }


async def test_a_fault_on_one_operation_leaves_the_others_alone(v: Vendor) -> None:
    v.sim.state.faults.update({"cce.upgrade": {"error_rates": {"503": 1.0}, "retry_after": 3}})
    assert (await v.hw("GET", CCE_BASE + CCE)).status == 200
    r = await cce_upgrade(v)
    assert r.status == 503 and r.headers["Retry-After"] == "3" and "errorCode" in await r.json()
    stats = v.sim.state.stats
    assert "cce.upgrade" not in stats.calls and v.sim.state.active_job(v.sim.target("cce", CCE)) is None
    assert stats.snapshot()["op_faults"] == {"cce.upgrade": {"503": 1}}
    assert stats.snapshot()["faults"] == {"cce": {"503": 1}}


# -- answers lost or spoiled after the request was applied -----------------------------------


async def test_apply_then_slow_answers_late_and_a_client_that_gave_up_still_started_the_job(
    v: Vendor,
) -> None:
    state = v.sim.state
    await v.token()
    state.faults.update({"cce.upgrade": {"apply_then_slow_rate": 1.0, "apply_then_slow_s": 1.0}})
    t0 = time.monotonic()
    r = await cce_upgrade(v)
    assert r.status == 200 and time.monotonic() - t0 >= 0.9  # the real answer, held back
    assert state.jobs[(await r.json())["metadata"]["uid"]].target_id == CCE

    state.faults.update({"cce.upgrade": {"apply_then_slow_rate": 1.0, "apply_then_slow_s": 3.0}})
    with pytest.raises(TimeoutError):
        await cce_upgrade(v, CCE_B, "v1.30", timeout=aiohttp.ClientTimeout(total=0.5))
    target_b = v.sim.target("cce", CCE_B)
    await eventually(lambda: state.active_job(target_b) is not None)
    assert state.stats.calls["cce.upgrade"] == {CCE: 1, CCE_B: 1}
    assert state.stats.faults["cce"]["apply_then_slow"] == 2


async def test_apply_then_5xx_starts_the_job_then_answers_an_error(v: Vendor) -> None:
    state = v.sim.state
    state.faults.update(
        {"ocp.upgrade": {"apply_then_5xx_rate": 1.0, "apply_then_5xx_status": 503, "retry_after": 4}}
    )
    r = await v.ocp("POST", f"/api/v2/ob/clusters/{OB}/upgrade", json=OB_BODY)
    body = await r.json()
    assert r.status == 503 and r.headers["Retry-After"] == "4"
    assert body["successful"] is False and body["error"]["message"]
    assert state.stats.calls["ocp.upgrade"] == {OB: 1}
    assert state.stats.op_faults["ocp.upgrade"] == {"apply_then_5xx": 1}
    tasks = await (await v.ocp("GET", f"/api/v2/tasks/instances?clusterId={OB}")).json()
    assert [t["status"] for t in tasks["data"]["contents"]] == ["RUNNING"]
    state.faults.clear()
    assert (await v.ocp("POST", f"/api/v2/ob/clusters/{OB}/upgrade", json=OB_BODY)).status == 409


async def test_drop_after_commit_on_one_operation(v: Vendor) -> None:
    state = v.sim.state
    state.faults.update({"ncloud.upgrade": {"drop_after_commit_rate": 1.0}})
    r = await v.ncloud("POST", "/api/v1/cluster/rollingUpgradePreCheck", json=KAFKA_BODY)
    assert r.status == 200  # another operation of the same service: untouched
    with pytest.raises(aiohttp.ClientError):
        await v.ncloud("POST", "/api/v1/cluster/rollingUpgrade", json=KAFKA_BODY)
    assert state.active_job(v.sim.target("ncloud-kafka", str(KAFKA))) is not None
    assert state.stats.op_faults["ncloud.upgrade"] == {"drop_after_commit": 1}


# -- list lag --------------------------------------------------------------------------------


async def test_cce_lag_hides_a_new_task_from_the_list_and_the_cluster_phase_not_from_get_by_id(
    v: Vendor,
) -> None:
    v.sim.state.faults.update({"cce": {"list_lag_s": 600}})
    uid = (await (await cce_upgrade(v)).json())["metadata"]["uid"]
    tasks = CCE_BASE + CCE + "/operation/upgrade/tasks"
    assert (await (await v.hw("GET", tasks)).json())["items"] == []
    assert (await (await v.hw("GET", CCE_BASE + CCE)).json())["status"]["phase"] == "Available"
    r = await v.hw("GET", f"{tasks}/{uid}")
    assert r.status == 200 and (await r.json())["status"]["phase"] in ("Init", "Queuing", "Running")
    # the lag is the operation's when it has a spec: the list is up to date, the cluster is not
    v.sim.state.faults.update({"cce.upgrade_tasks": {}})
    assert [t["metadata"]["uid"] for t in (await (await v.hw("GET", tasks)).json())["items"]] == [uid]
    assert (await (await v.hw("GET", CCE_BASE + CCE)).json())["status"]["phase"] == "Available"
    unhide(v.sim.state.jobs[uid])
    assert (await (await v.hw("GET", CCE_BASE + CCE)).json())["status"]["phase"] == "Upgrading"


async def test_autopilot_lag_hides_a_new_workflow_from_the_list(v: Vendor) -> None:
    v.sim.state.faults.update({"autopilot": {"list_lag_s": 600}})
    workflow = {
        "kind": "WorkFlowTask",
        "apiVersion": "v3",
        "spec": {"clusterID": AP, "targetVersion": "v1.29"},
    }
    r = await v.hw("POST", AP_WF, json=workflow)
    uid = (await r.json())["metadata"]["uid"]
    assert (await (await v.hw("GET", AP_WF)).json())["items"] == []
    assert (await v.hw("GET", f"{AP_WF}/{uid}")).status == 200
    # a second workflow is refused all the same: conflicts are checked on the truth
    r = await v.hw("POST", AP_WF, json=workflow)
    assert r.status == 409
    from simulator.huawei import huawei_sim

    unhide(huawei_sim(v.sim.state).workflows[uid])
    assert [w["metadata"]["uid"] for w in (await (await v.hw("GET", AP_WF)).json())["items"]] == [uid]


async def test_ocp_lag_hides_a_new_task_from_the_list_and_the_cluster_status(v: Vendor) -> None:
    v.sim.state.faults.update({"ocp": {"list_lag_s": 600}})
    task = (await (await v.ocp("POST", f"/api/v2/ob/clusters/{OB}/upgrade", json=OB_BODY)).json())["data"]
    listing = await (await v.ocp("GET", f"/api/v2/tasks/instances?clusterId={OB}")).json()
    assert listing["data"]["contents"] == [] and listing["data"]["page"]["totalElements"] == 0
    assert (await (await v.ocp("GET", f"/api/v2/ob/clusters/{OB}")).json())["data"]["status"] == "RUNNING"
    assert (await v.ocp("GET", f"/api/v2/tasks/instances/{task['id']}")).status == 200
    unhide(v.sim.state.jobs[f"ocp-{task['id']}"])
    listing = await (await v.ocp("GET", f"/api/v2/tasks/instances?clusterId={OB}")).json()
    assert [t["id"] for t in listing["data"]["contents"]] == [task["id"]]
    # OCP has no UPGRADING cluster status: a cluster being upgraded is OPERATING
    assert (await (await v.ocp("GET", f"/api/v2/ob/clusters/{OB}")).json())["data"]["status"] == "OPERATING"


async def test_ncloud_lag_keeps_the_status_from_before_the_upgrade(v: Vendor) -> None:
    v.sim.state.faults.update({"ncloud": {"list_lag_s": 600}})
    await v.ncloud("POST", "/api/v1/cluster/rollingUpgradePreCheck", json=KAFKA_BODY)
    assert (await v.ncloud("POST", "/api/v1/cluster/rollingUpgrade", json=KAFKA_BODY)).status == 200
    info = f"/api/v1/cluster/getClusterInfoList/{KAFKA}"  # the cluster's status
    status = f"/api/v1/cluster/getClusterStatus/{KAFKA}"  # its brokers'

    async def shown() -> tuple[str, str, list[str]]:
        cluster = (await (await v.ncloud("POST", info)).json())["result"]
        brokers = (await (await v.ncloud("GET", status)).json())["result"]
        return (
            cluster["status"],
            brokers["brokerStatus"],
            [n["status"] for n in brokers["brokerStatusPerNode"]],
        )

    assert await shown() == ("running", "green", ["green"] * 3)
    [job] = v.sim.state.jobs_of(str(KAFKA))
    unhide(job)
    cluster_status, broker_status, nodes = await shown()
    assert (cluster_status, broker_status, nodes.count("orange")) == ("changing", "orange", 1)


async def test_taurusdb_lag_404s_the_new_job_and_hides_it_from_list_and_instance(v: Vendor) -> None:
    v.sim.state.faults.update({"taurusdb": {"list_lag_s": 600}})
    r = await v.hw("POST", f"/v3/{{p}}/instances/{SR}/starrocks/db-upgrade", json={})
    job_id = (await r.json())["job_id"]
    r = await v.hw("GET", f"/v3/{{p}}/jobs?id={job_id}")
    assert r.status == 404 and (await r.json())["error_code"] == "DBS.200404"
    assert (await (await v.hw("GET", "/v3/{p}/immediate-jobs")).json())["total_count"] == 0
    [instance] = (await (await v.hw("GET", SR_INSTANCE)).json())["instances"]
    assert (instance["status"], instance["actions"], instance["data_store_version"]) == (
        "normal",
        [],
        "3.1.6",
    )
    unhide(v.sim.state.jobs[job_id])
    assert (await v.hw("GET", f"/v3/{{p}}/jobs?id={job_id}")).status == 200
    listed = (await (await v.hw("GET", "/v3/{p}/immediate-jobs")).json())["jobs"]
    assert [j["job_id"] for j in listed] == [job_id]
    [instance] = (await (await v.hw("GET", SR_INSTANCE)).json())["instances"]
    assert instance["status"] == "upgrading" and instance["actions"][0]["job_id"] == job_id


# -- Date header and clock skew --------------------------------------------------------------


async def test_every_answer_carries_a_date_from_the_simulators_clock(v: Vendor) -> None:
    clock = v.sim.state.clock
    for call in (
        lambda: v.ocp("GET", f"/api/v2/ob/clusters/{OB}"),
        lambda: v.hw("GET", CCE_BASE + CCE),
        lambda: v.ncloud("GET", f"/api/v1/cluster/getClusterStatus/{KAFKA}"),
        lambda: v.http.get(f"{v.sim.url}/_sim/fleet"),
        lambda: v.http.get(f"{v.sim.url}/no/such/path"),
        lambda: v.http.get(f"{v.sim.url}{CCE_BASE.replace('{p}', v.project)}{CCE}"),  # no auth: 401
    ):
        before = clock.now()
        r = await call()
        after = clock.now()
        assert math.floor(before) <= header_epoch(r) <= after, r.url
        assert header_epoch(r) < time.time() - 86400  # the simulated 2023, not the wall clock


async def test_clock_skew_shifts_the_date_header_and_every_timestamp(v: Vendor) -> None:
    state, clock = v.sim.state, v.sim.state.clock
    state.faults.update(
        {"cce": {"clock_skew_s": 90}, "ocp": {"clock_skew_s": -45}, "taurusdb": {"clock_skew_s": 90}}
    )

    async def timed(call, skew: float):
        before = clock.now()
        r = await call()
        after = clock.now()
        assert math.floor(before + skew) <= header_epoch(r) <= after + skew, r.url
        return r, before, after

    # CCE +90: Date, the task's creationTimestamp, and also on errors (injected, auth)
    r, _, _ = await timed(lambda: cce_upgrade(v), 90)
    uid = (await r.json())["metadata"]["uid"]
    job = state.jobs[uid]
    r, _, _ = await timed(lambda: v.hw("GET", CCE_BASE + CCE + f"/operation/upgrade/tasks/{uid}"), 90)
    assert epoch_of((await r.json())["metadata"]["creationTimestamp"]) == math.floor(job.started + 90)
    no_auth = f"{v.sim.url}{CCE_BASE.replace('{p}', v.project)}{CCE}"
    r, _, _ = await timed(lambda: v.http.get(no_auth), 90)
    assert r.status == 401
    state.faults.update({"cce.cluster": {"error_rates": {"500": 1.0}, "clock_skew_s": 90}})
    r, _, _ = await timed(lambda: v.hw("GET", CCE_BASE + CCE), 90)
    assert r.status == 500

    # OCP -45: Date, the envelope's timestamp, the task's startTime
    r, before, after = await timed(
        lambda: v.ocp("POST", f"/api/v2/ob/clusters/{OB}/upgrade", json=OB_BODY), -45
    )
    body = await r.json()
    assert before - 45 - 0.001 <= epoch_of(body["timestamp"]) <= after - 45
    created = state.jobs[f"ocp-{body['data']['id']}"].extra["created"]
    assert abs(epoch_of(body["data"]["startTime"]) - (created - 45)) < 0.001

    # TaurusDB +90: the job list's created_time and the instance's action stamps
    r, _, _ = await timed(lambda: v.hw("POST", f"/v3/{{p}}/instances/{SR}/starrocks/db-upgrade", json={}), 90)
    sr_job = state.jobs[(await r.json())["job_id"]]
    r, _, _ = await timed(lambda: v.hw("GET", "/v3/{p}/immediate-jobs"), 90)
    [listed] = (await r.json())["jobs"]
    assert listed["created_time"].endswith("+0000")
    assert epoch_of(listed["created_time"]) == math.floor(sr_job.extra["created"] + 90)
    r, _, _ = await timed(lambda: v.hw("GET", SR_INSTANCE), 90)
    [action] = (await r.json())["instances"][0]["actions"]
    assert epoch_of(action["created_at"]) == math.floor(sr_job.extra["created"] + 90)

    # a service without skew answers on the plain simulated clock
    await timed(lambda: v.ncloud("GET", f"/api/v1/cluster/getClusterStatus/{KAFKA}"), 0)
