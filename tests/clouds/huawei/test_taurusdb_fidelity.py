"""TaurusDbClient against the stricter simulator: which id goes where, the flags on the wire, the
documented job statuses (Unauthorized, Canceled) and error bodies."""

from __future__ import annotations

import aiohttp
import pytest

from shared.clouds.errors import PermanentCloudError
from shared.clouds.huawei import TaurusDbClient
from shared.clouds.huawei.models.taurusdb import JOB_STATUSES, TERMINAL_JOB_STATUSES
from shared.clouds.sessions import close_sessions

from .conftest import CREDS, SR_ID, TAURUS_ID, config

pytestmark = pytest.mark.usefixtures("hw_env")
OTHER_TAURUS = "9" * 32 + "in07"


@pytest.fixture(autouse=True)
async def _sessions():
    yield
    await close_sessions()


@pytest.fixture
def sr(sim):
    return sim.target("starrocks")


async def control(sim, job_id: str, status: str) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sim.url}/_sim/taurusdb/jobs/{job_id}", json={"status": status}) as r,
    ):
        await r.read()
        return r


@pytest.mark.parametrize(
    ("accepts", "good", "bad"),
    [
        ("in17", SR_ID, TAURUS_ID),
        ("in07", TAURUS_ID, SR_ID),
        ("either", SR_ID, None),
        ("either", TAURUS_ID, None),
    ],
)
async def test_the_upgrade_path_takes_the_id_the_instance_accepts(sim, sr, accepts, good, bad) -> None:
    sr.extra["upgrade_path_id"] = accepts
    client = TaurusDbClient(config(sim.url))
    if bad is not None:
        with pytest.raises(PermanentCloudError) as info:
            await client.upgrade_starrocks(bad)
        assert (info.value.status, info.value.code, info.value.message) == (
            400,
            "DBS.200022",
            "Instance not found.",
        )
    assert await client.upgrade_starrocks(good)
    assert sim.state.stats.calls["taurusdb.upgrade"] == {SR_ID: 1}


async def test_the_instance_query_takes_the_taurusdb_id_then_the_starrocks_id(sim) -> None:
    client = TaurusDbClient(config(sim.url))
    instance = await client.get_starrocks_instance(TAURUS_ID, SR_ID)
    assert (instance.id, instance.version) == (SR_ID, "3.1.6")
    for first, second in (
        (SR_ID, TAURUS_ID),
        (SR_ID, SR_ID),
        (OTHER_TAURUS, SR_ID),
        ("x", SR_ID),
        (TAURUS_ID, "x"),
    ):
        with pytest.raises(PermanentCloudError) as info:
            await client.get_starrocks_instance(first, second)
        assert (info.value.status, info.value.code) == (404, "DBS.200022")


async def test_flags_go_out_as_the_documented_strings(sim, sr) -> None:
    client = TaurusDbClient(config(sim.url))
    job_id = await client.upgrade_starrocks(SR_ID, delay=True, skip_validate="true")
    job = sim.state.jobs[job_id]
    assert job.extra["body"] == {"delay": "true", "is_skip_validate": "true"}
    assert (await client.get_job(job_id)).status == "Pending"  # delayed: not executed yet


async def test_unauthorized_waits_for_a_person_then_runs(sim, sr) -> None:
    sr.extra["job_status"] = "Unauthorized"
    client = TaurusDbClient(config(sim.url))
    job_id = await client.upgrade_starrocks(SR_ID)
    sim.state.clock.advance(5000)  # far past the job's 600 s: nothing moves without authorisation
    job = await client.get_job(job_id)
    assert job.status == "Unauthorized" and job.status in JOB_STATUSES and not job.terminal
    assert [j.job_id for j in await client.list_immediate_jobs(status="Unauthorized")] == [job_id]
    assert (await client.get_starrocks_instance(TAURUS_ID, SR_ID)).version == "3.1.6"
    assert (await control(sim, job_id, "Running")).status == 200
    assert (await client.get_job(job_id)).status == "Running"
    sim.state.clock.advance(601)
    assert (await client.get_job(job_id)).status == "Completed"
    assert (await client.get_starrocks_instance(TAURUS_ID, SR_ID)).version == "3.3.5"


@pytest.mark.parametrize("how", ["knob", "control"])
async def test_canceled_is_terminal_and_leaves_the_version(sim, sr, how) -> None:
    if how == "knob":
        sr.extra["job_status"] = "Canceled"
    client = TaurusDbClient(config(sim.url))
    job_id = await client.upgrade_starrocks(SR_ID)
    sim.state.clock.advance(100)
    if how == "control":
        assert (await control(sim, job_id, "Canceled")).status == 200
        assert (await control(sim, job_id, "Running")).status == 400  # only an Unauthorized job is authorised
    sim.state.clock.advance(600)
    job = await client.get_job(job_id)
    assert job.status == "Canceled" and job.status in TERMINAL_JOB_STATUSES and job.terminal and job.ended
    assert (await client.get_starrocks_instance(TAURUS_ID, SR_ID)).version == "3.1.6"
    assert await client.upgrade_starrocks(SR_ID)  # not busy any more


async def test_errors_are_the_documented_body_and_unknown_paths_the_gateways_404(sim) -> None:
    client = TaurusDbClient(config(sim.url))
    with pytest.raises(PermanentCloudError) as info:
        await client._call(
            "GET", f"/v3/{CREDS.hw_project_id}/instances/{TAURUS_ID}/nothing", endpoint_key="x"
        )
    assert (info.value.status, info.value.code) == (404, "APIGW.0101")
    async with aiohttp.ClientSession() as http:
        for method, path in (
            ("GET", f"/v3/{CREDS.hw_project_id}/no-such-api"),
            ("DELETE", f"/v3/{CREDS.hw_project_id}/jobs"),  # a known path, a method no API serves
        ):
            async with http.request(method, sim.url + path) as r:
                body = await r.json()
            assert r.status == 404 and body["error_code"] == "APIGW.0101" and body["error_msg"]
        path = f"/v3/{CREDS.hw_project_id}/instances/{SR_ID}/starrocks/db-upgrade"
        async with http.post(sim.url + path, data=b"not json") as r:  # unsigned: the gateway refuses first
            body = await r.json()
        assert (
            r.status == 401
            and set(body) >= {"error_code", "error_msg"}
            and body["error_code"] == "APIGW.0301"
        )
