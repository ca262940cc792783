"""The simulated TaurusDB StarRocks API is as strict as its pages: ids in their documented form and
position, ``{error_code, error_msg}`` on every error, the gateway's 404 for unknown paths, the
db-upgrade body's fields, and the documented job statuses (Unauthorized, Canceled on request)."""

from __future__ import annotations

import ast

import aiohttp
import pytest

import simulator.huawei.taurusdb as taurusdb
from simulator.core import SimTarget
from simulator.testing import run_simulator
from tests.simulator._vendor import Vendor

SR = "5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17"
TAURUS = "1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07"
ORPHAN = "0" * 31 + "1in17"  # a StarRocks node whose TaurusDB id the simulator was not told
UPGRADE = "/v3/{p}/instances/{id}/starrocks/db-upgrade"


def targets() -> list[SimTarget]:
    return [
        SimTarget(
            "sr-a", "starrocks", SR, "3.2.11", ["3.3.5"], job_seconds=600, extra={"instance_id": TAURUS}
        ),
        SimTarget("sr-b", "starrocks", ORPHAN, "3.2.11", ["3.3.5"], job_seconds=600),
    ]


@pytest.fixture
async def v():
    async with run_simulator(targets=targets(), speed=1.0) as sim, aiohttp.ClientSession() as http:
        yield Vendor(sim, http)


async def upgrade(v: Vendor, id_: str, **kw) -> aiohttp.ClientResponse:
    return await v.hw("POST", UPGRADE.replace("{id}", id_), **kw)


def test_the_simulator_imports_nothing_from_the_clients() -> None:
    tree = ast.parse(open(taurusdb.__file__, encoding="utf-8").read())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in modules if m and m.startswith("shared")}, modules


@pytest.mark.parametrize(
    ("path_id", "accepts", "status"),
    [
        (SR, "either", 200),
        (TAURUS, "either", 200),
        (SR, "in17", 200),
        (TAURUS, "in17", 400),
        (TAURUS, "in07", 200),
        (SR, "in07", 400),
        (SR.upper().replace("IN17", "in17"), "either", 400),  # another instance
        (SR[:-4] + "in18", "either", 400),
        (SR[1:], "either", 400),  # 35 characters
        ("x", "either", 400),
    ],
)
async def test_the_upgrade_path_id_is_checked_in_form_and_kind(v, path_id, accepts, status) -> None:
    v.sim.state.targets[SR].extra["upgrade_path_id"] = accepts
    r = await upgrade(v, path_id, json={})
    body = await r.json()
    assert r.status == status, body
    if status == 400:
        assert body == {"error_code": "DBS.200022", "error_msg": "Instance not found."}
        assert r.headers["X-Request-Id"]
    else:
        assert set(body) == {"job_id"}


@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        (TAURUS, SR, 200),
        ("9" * 32 + "in07", SR, 404),  # another TaurusDB instance
        (SR, SR, 404),  # a StarRocks id where the TaurusDB id goes
        (TAURUS, TAURUS, 404),
        ("x", SR, 404),
        ("9" * 32 + "in07", ORPHAN, 200),  # the simulator does not know this node's TaurusDB id
        ("x", ORPHAN, 404),  # … but its form still counts
    ],
)
async def test_the_instance_query_wants_in07_then_in17(v, first, second, status) -> None:
    r = await v.hw("GET", f"/v3/{{p}}/instances/{first}/starrocks/{second}")
    body = await r.json()
    assert r.status == status
    if status == 404:
        assert body == {"error_code": "DBS.200022", "error_msg": "Instance not found."}
    else:
        assert [i["id"] for i in body["instances"]] == [second]


@pytest.mark.parametrize(
    "body",
    [
        {"delay": "maybe"},
        {"is_skip_validate": 1},
        {"delay": False, "force": True},
        ["delay"],
    ],
)
async def test_the_upgrade_body_is_checked(v, body) -> None:
    r = await upgrade(v, SR, json=body)
    answer = await r.json()
    assert r.status == 400 and answer["error_code"] == "DBS.200001" and answer["error_msg"]
    r = await upgrade(v, SR, data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error_code"] == "DBS.200001"
    assert v.sim.state.jobs == {}


@pytest.mark.parametrize(
    "body", [{}, {"delay": "false", "is_skip_validate": "true"}, {"delay": False, "is_skip_validate": True}]
)
async def test_both_spellings_of_the_flags_are_taken(v, body) -> None:
    r = await upgrade(v, SR, json=body)
    assert r.status == 200
    [job] = v.sim.state.jobs.values()
    assert job.extra["body"] == body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v3/{p}/instances"),
        ("GET", "/v3/{p}/instances/" + TAURUS + "/htap"),
        ("PUT", "/v3/{p}/jobs"),
        ("POST", "/v3/{p}/immediate-jobs"),
    ],
)
async def test_unknown_paths_are_the_gateways_404_in_the_huawei_body(v, method, path) -> None:
    r = await v.hw(method, path)
    body = await r.json()
    assert r.status == 404 and body["error_code"] == "APIGW.0101" and body["error_msg"]


async def test_unauthorized_and_canceled_jobs_and_the_control_route(v) -> None:
    state = v.sim.state
    state.targets[SR].extra["job_status"] = "Unauthorized"
    job_id = (await (await upgrade(v, SR, json={})).json())["job_id"]
    state.clock.advance(10_000)

    async def job() -> dict:
        r = await v.hw("GET", f"/v3/{{p}}/jobs?id={job_id}")
        return (await r.json())["job"]

    assert (await job())["status"] == "Unauthorized" and (await job())["ended"] is None
    listed = (await (await v.hw("GET", "/v3/{p}/immediate-jobs?status=Unauthorized")).json())["jobs"]
    assert [j["job_id"] for j in listed] == [job_id]
    r = await upgrade(v, SR, json={})
    assert r.status == 409 and (await r.json())["error_code"] == "DBS.200019"  # still holds the instance
    async with v.http.post(f"{v.sim.url}/_sim/taurusdb/jobs/{job_id}", json={"status": "Canceled"}) as r:
        assert r.status == 200 and (await r.json())["job"]["status"] == "Canceled"
    done = await job()
    assert done["status"] == "Canceled" and done["ended"] and done["status"] in taurusdb.JOB_STATUSES
    async with v.http.post(f"{v.sim.url}/_sim/taurusdb/jobs/{job_id}", json={"status": "Running"}) as r:
        assert r.status == 400
    async with v.http.post(f"{v.sim.url}/_sim/taurusdb/jobs/nope", json={"status": "Running"}) as r:
        assert r.status == 404
    instance = (await (await v.hw("GET", f"/v3/{{p}}/instances/{TAURUS}/starrocks/{SR}")).json())[
        "instances"
    ][0]
    assert (instance["data_store_version"], instance["actions"]) == ("3.2.11", [])
