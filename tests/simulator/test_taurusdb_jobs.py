"""TaurusDB lost-job discovery: ``GET /v3/{p}/immediate-jobs`` and the instance's ``actions``."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import aiohttp
import pytest

from simulator.core import SimTarget
from simulator.huawei.taurusdb import ACTION_NAMES, JOB_NAME
from simulator.testing import run_simulator
from tests.simulator._vendor import Vendor, epoch_of
from tests.simulator.test_faults import START

TAURUS = "1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07"
IDS = [f"{i:032x}in17" for i in range(1, 13)]
JOB_KEYS = {
    "instance_id",
    "job_id",
    "job_name",
    "status",
    "process",
    "created_time",
    "ended_time",
    "fail_reason",
    "show_detail",
}


def targets() -> list[SimTarget]:
    out = [
        SimTarget(f"sr-{i:02d}", "starrocks", sr, "3.2.11", ["3.3.5"], job_seconds=600)
        for i, sr in enumerate(IDS)
    ]
    out[0].extra["instance_id"] = TAURUS
    return out


@pytest.fixture
async def v():
    async with (
        run_simulator(targets=targets(), speed=1.0, start=START) as sim,
        aiohttp.ClientSession() as http,
    ):
        yield Vendor(sim, http)


async def upgrade(v: Vendor, sr: str) -> str:
    r = await v.hw("POST", f"/v3/{{p}}/instances/{sr}/starrocks/db-upgrade", json={})
    assert r.status == 200
    return (await r.json())["job_id"]


async def jobs(v: Vendor, query: str = "") -> dict:
    r = await v.hw("GET", f"/v3/{{p}}/immediate-jobs{query}")
    assert r.status == 200, await r.text()
    return await r.json()


def stamp(epoch: float, zone: str = "+0000") -> str:
    """A query parameter in the job list's time format, URL-encoded (``+`` would read as a space)."""
    return quote(datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S") + zone)


async def test_the_job_list_shape_filters_and_pages(v: Vendor) -> None:
    state = v.sim.state
    state.targets[IDS[0]].outcome = "fail"
    early = [await upgrade(v, sr) for sr in IDS[:4]]
    state.clock.advance(3600)  # the first four end (one failed); the rest start an hour later
    middle = state.clock.now()
    late = [await upgrade(v, sr) for sr in IDS[4:]]

    answer = await jobs(v)
    assert answer["total_count"] == 12 and answer["action_names"] == ACTION_NAMES == [JOB_NAME]
    assert len(answer["jobs"]) == 10 and all(set(j) >= JOB_KEYS for j in answer["jobs"])
    assert [j["job_id"] for j in answer["jobs"]] == (early + late)[::-1][:10]  # newest first
    page2 = await jobs(v, "?offset=2")
    assert [j["job_id"] for j in page2["jobs"]] == early[:2][::-1] and page2["total_count"] == 12
    assert len((await jobs(v, "?limit=20"))["jobs"]) == 12

    by_id = {j["job_id"]: j for j in (await jobs(v, "?limit=50"))["jobs"]}
    failed = by_id[early[0]]
    assert (failed["status"], failed["instance_id"], failed["job_name"]) == ("Failed", IDS[0], JOB_NAME)
    assert failed["fail_reason"] and failed["ended_time"] and failed["show_detail"] is False
    assert by_id[early[1]]["status"] == "Completed" and by_id[early[1]]["process"] == "100%"
    assert by_id[late[0]]["status"] == "Running" and by_id[late[0]]["ended_time"] is None
    assert epoch_of(by_id[late[0]]["created_time"]) >= int(middle)

    assert [j["job_id"] for j in (await jobs(v, "?status=Failed"))["jobs"]] == [early[0]]
    assert (await jobs(v, "?status=Completed"))["total_count"] == 3
    assert [j["job_id"] for j in (await jobs(v, f"?job_id={late[3]}"))["jobs"]] == [late[3]]
    assert (await jobs(v, f"?job_name={JOB_NAME}&limit=50"))["total_count"] == 12
    assert (await jobs(v, "?job_name=RebootGaussDBforMySQLInstance"))["total_count"] == 0
    since = (await jobs(v, f"?start_time={stamp(middle - 1)}&limit=50"))["jobs"]
    assert sorted(j["job_id"] for j in since) == sorted(late)
    until = (await jobs(v, f"?end_time={stamp(middle - 1, 'Z')}&limit=50"))["jobs"]
    assert sorted(j["job_id"] for j in until) == sorted(early)
    assert state.stats.calls["taurusdb.jobs_list"]["*"] == 11


@pytest.mark.parametrize(
    "query",
    ["?limit=15", "?limit=x", "?offset=-1", "?status=Done", "?start_time=yesterday", "?end_time=2024-01-01"],
)
async def test_bad_job_list_parameters_are_the_vendors_400(v: Vendor, query: str) -> None:
    r = await v.hw("GET", f"/v3/{{p}}/immediate-jobs{query}")
    body = await r.json()
    assert r.status == 400 and body["error_code"] == "DBS.200001" and body["error_msg"]


async def test_the_instance_shows_the_running_upgrade_in_actions(v: Vendor) -> None:
    view = f"/v3/{{p}}/instances/{TAURUS}/starrocks/{IDS[0]}"

    async def instance() -> dict:
        r = await v.hw("GET", view)
        assert r.status == 200
        [only] = (await r.json())["instances"]
        return only

    assert (await instance())["actions"] == []
    job_id = await upgrade(v, TAURUS)  # the upgrade path takes either id
    [action] = (await instance())["actions"]
    assert set(action) == {
        "id",
        "action",
        "object_id",
        "type",
        "job_id",
        "status",
        "created_at",
        "updated_at",
    }
    assert (action["job_id"], action["status"], action["object_id"]) == (job_id, "OK_TO_RUN", IDS[0])
    assert (await instance())["status"] == "upgrading"
    v.sim.state.clock.advance(600)
    done = await instance()
    assert (done["status"], done["actions"], done["data_store_version"]) == ("normal", [], "3.3.5")


async def test_the_instance_wants_its_own_taurusdb_id_first(v: Vendor) -> None:
    for path in (
        f"/v3/{{p}}/instances/{'0' * 32}in07/starrocks/{IDS[0]}",  # another TaurusDB instance
        f"/v3/{{p}}/instances/{TAURUS}/starrocks/{TAURUS}",  # the TaurusDB id is not a StarRocks id
        f"/v3/{{p}}/instances/whatever/starrocks/{IDS[1]}",  # not a TaurusDB id at all (32 + in07)
    ):
        r = await v.hw("GET", path)
        assert r.status == 404 and (await r.json())["error_code"] == "DBS.200022"
    # a target without a known TaurusDB id takes any well-formed first id
    assert (await v.hw("GET", f"/v3/{{p}}/instances/{'9' * 32}in07/starrocks/{IDS[1]}")).status == 200
