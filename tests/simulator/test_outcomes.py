"""Per-target job outcomes (succeed | fail | stall): fleet file, control route, every vendor."""

from __future__ import annotations

import aiohttp
import pytest

from shared.errors import ConfigError
from simulator.core import STALL_AT, SimState, SimTarget
from simulator.fleet import load_fleet
from simulator.testing import run_simulator
from tests.simulator._vendor import Vendor
from tests.simulator.test_faults import (
    CCE,
    CCE_BASE,
    KAFKA,
    KAFKA_BODY,
    OB,
    OB_BODY,
    SR,
    SR_INSTANCE,
    START,
    cce_upgrade,
)

SR_UPGRADE = f"/v3/{{p}}/instances/{SR}/starrocks/db-upgrade"


@pytest.fixture
async def v():
    async with run_simulator(speed=1.0, start=START) as sim, aiohttp.ClientSession() as http:
        yield Vendor(sim, http)


def test_outcome_in_the_fleet_file(tmp_path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("targets:\n  - {name: a, kind: cce, id: x, version: v1, outcome: stall}\n")
    assert [t.outcome for t in load_fleet(path)] == ["stall"]
    path.write_text("targets:\n  - {name: a, kind: cce, id: x, version: v1, outcome: explode}\n")
    with pytest.raises(ConfigError) as info:
        load_fleet(path)
    assert "targets[0].outcome" in str(info.value)
    with pytest.raises(ValueError, match="outcome"):
        SimTarget("a", "cce", "x", "v1", [], outcome="explode")


async def test_outcome_set_by_the_control_route_and_shown_in_the_fleet(v: Vendor) -> None:
    url = v.sim.url
    r = await v.http.post(f"{url}/_sim/targets/{OB}", json={"outcome": "stall"})
    assert r.status == 200 and (await r.json())["outcome"] == "stall"
    fleet = await (await v.http.get(f"{url}/_sim/fleet")).json()
    assert {t["id"]: t["outcome"] for t in fleet["targets"]}[OB] == "stall"
    assert {t["outcome"] for t in fleet["targets"] if t["id"] != OB} == {"succeed"}
    r = await v.http.post(f"{url}/_sim/targets/{OB}", json={"outcome": "explode"})
    assert r.status == 400 and "outcome" in (await r.json())["error"]


def test_fail_is_persistent_unlike_fail_next() -> None:
    target = SimTarget("t", "cce", "c1", "v1", ["v2"], job_seconds=100, outcome="fail")
    state = SimState.create([target])
    for n in range(3):
        job = state.start_job(target, "v2", service="cce", job_id=f"j{n}")
        state.clock.advance(100)
        assert job.outcome(state.clock.now()) == "failed" and job.fail_reason
    assert state.by_id("cce", "c1").version == "v1"
    target.outcome = "succeed"
    job = state.start_job(target, "v2", service="cce", job_id="ok")
    state.clock.advance(100)
    assert job.outcome(state.clock.now()) == "succeeded" and state.by_id("cce", "c1").version == "v2"


def test_stall_runs_forever_frozen() -> None:
    target = SimTarget("t", "cce", "c1", "v1", ["v2"], job_seconds=100, outcome="stall")
    state = SimState.create([target])
    job = state.start_job(target, "v2", service="cce", job_id="j")
    for _ in range(3):
        state.clock.advance(10_000)
        now = state.clock.now()
        assert job.outcome(now) == "running" and job.fraction(now) == STALL_AT
        assert state.active_job(target) is job and state.by_id("cce", "c1").version == "v1"


async def test_taurusdb_fail_outcome_fails_every_job_in_the_documented_shape(v: Vendor) -> None:
    v.sim.target("starrocks", SR).outcome = "fail"
    for _ in range(2):
        job_id = (await (await v.hw("POST", SR_UPGRADE, json={})).json())["job_id"]
        v.sim.state.clock.advance(10_000)
        job = (await (await v.hw("GET", f"/v3/{{p}}/jobs?id={job_id}")).json())["job"]
        assert job["status"] == "Failed" and job["fail_reason"] and job["ended"]
    instance = (await (await v.hw("GET", SR_INSTANCE)).json())["instances"][0]
    assert (instance["status"], instance["data_store_version"]) == ("normal", "3.1.6")


async def test_ocp_fail_outcome_fails_again_on_retry(v: Vendor) -> None:
    v.sim.state.targets[OB].outcome = "fail"
    task = (await (await v.ocp("POST", f"/api/v2/ob/clusters/{OB}/upgrade", json=OB_BODY)).json())["data"]
    v.sim.state.clock.advance(10_000)
    path = f"/api/v2/tasks/instances/{task['id']}"
    assert (await (await v.ocp("GET", path)).json())["data"]["status"] == "FAILED"
    assert (await v.ocp("POST", path + "/retry")).status == 200
    v.sim.state.clock.advance(10_000)
    assert (await (await v.ocp("GET", path)).json())["data"]["status"] == "FAILED"


async def test_stall_outcome_freezes_every_vendors_view(v: Vendor) -> None:
    state = v.sim.state
    for target in state.targets.values():
        target.outcome = "stall"
    uid = (await (await cce_upgrade(v)).json())["metadata"]["uid"]
    sr_job = (await (await v.hw("POST", SR_UPGRADE, json={})).json())["job_id"]
    ob_task = (await (await v.ocp("POST", f"/api/v2/ob/clusters/{OB}/upgrade", json=OB_BODY)).json())["data"]
    await v.ncloud("POST", "/api/v1/cluster/rollingUpgradePreCheck", json=KAFKA_BODY)
    assert (await v.ncloud("POST", "/api/v1/cluster/rollingUpgrade", json=KAFKA_BODY)).status == 200

    async def views() -> dict:
        cce = (await (await v.hw("GET", CCE_BASE + CCE + f"/operation/upgrade/tasks/{uid}")).json())["status"]
        sr = (await (await v.hw("GET", f"/v3/{{p}}/jobs?id={sr_job}")).json())["job"]
        ob = (await (await v.ocp("GET", f"/api/v2/tasks/instances/{ob_task['id']}")).json())["data"]
        kafka = (await (await v.ncloud("POST", f"/api/v1/cluster/getClusterInfoList/{KAFKA}")).json())[
            "result"
        ]
        brokers = (await (await v.ncloud("GET", f"/api/v1/cluster/getClusterStatus/{KAFKA}")).json())[
            "result"
        ]
        return {
            "cce": (cce["phase"], cce["progress"]),
            "sr": (sr["status"], sr["process"]),
            "ob": (ob["status"], [s["status"] for s in ob["subtasks"]]),
            "kafka": (
                kafka["status"],
                brokers["brokerStatus"],
                [n["status"] for n in brokers["brokerStatusPerNode"]],
            ),
        }

    state.clock.advance(100_000)
    first = await views()
    assert first["cce"] == ("Running", "50") and first["sr"] == ("Running", "50%")
    assert first["ob"][0] == "RUNNING" and first["ob"][1].count("RUNNING") == 1
    assert first["kafka"][:2] == ("changing", "orange") and first["kafka"][2].count("orange") == 1
    state.clock.advance(1_000_000)
    assert await views() == first
    assert (await cce_upgrade(v)).status == 409  # still busy
