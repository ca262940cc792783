from __future__ import annotations

import pytest

from shared.clouds.errors import PermanentCloudError, TransientCloudError
from shared.clouds.huawei import TaurusDbClient
from shared.clouds.sessions import close_sessions
from simulator.huawei import huawei_sim

from .conftest import SR_ID, TAURUS_ID, config

pytestmark = pytest.mark.usefixtures("hw_env")


@pytest.fixture(autouse=True)
async def _sessions():
    yield
    await close_sessions()


async def test_upgrade_follow_to_completed_and_version_changes(sim) -> None:
    client = TaurusDbClient(config(sim.url))
    job_id = await client.upgrade_starrocks(SR_ID)
    job = await client.get_job(job_id)
    assert job.status in ("Running", "Pending") and not job.terminal
    sim.state.clock.advance(300)
    job = await client.get_job(job_id)
    assert job.status == "Running" and job.progress == 50.0
    assert (await client.get_starrocks_instance(TAURUS_ID, SR_ID)).version == "3.1.6"
    sim.state.clock.advance(301)
    job = await client.get_job(job_id)
    assert job.status == "Completed" and job.progress == 100.0 and job.instance.id == SR_ID
    assert (await client.get_starrocks_instance(TAURUS_ID, SR_ID)).version == "3.3.5"
    assert sim.state.stats.calls["taurusdb.upgrade"][SR_ID] == 1


async def test_failed_job_carries_reason(sim) -> None:
    sim.target("starrocks").fail_next = True
    client = TaurusDbClient(config(sim.url))
    job_id = await client.upgrade_starrocks(TAURUS_ID, delay="false", skip_validate=True)
    sim.state.clock.advance(600)
    job = await client.get_job(job_id)
    assert job.status == "Failed" and job.fail_reason


async def test_second_upgrade_is_operation_in_progress(sim) -> None:
    client = TaurusDbClient(config(sim.url))
    await client.upgrade_starrocks(SR_ID)
    with pytest.raises(TransientCloudError) as info:
        await client.upgrade_starrocks(SR_ID)
    assert info.value.code == "DBS.200019" and info.value.status == 409 and not info.value.maybe_applied
    # retried until attempts ran out, not called once only
    assert sim.state.stats.calls["taurusdb.upgrade"][SR_ID] == 1 + 4


async def test_unknown_instance_is_permanent(sim) -> None:
    client = TaurusDbClient(config(sim.url))
    for wrong in (
        "nope",
        f"{'0' * 32}in17",
        f"{'0' * 32}in07",
    ):  # malformed; nobody's StarRocks; nobody's TaurusDB
        with pytest.raises(PermanentCloudError) as info:
            await client.upgrade_starrocks(wrong)
        assert info.value.code == "DBS.200022" and info.value.status == 400 and info.value.request_id


async def test_fresh_job_404_is_retried(sim) -> None:
    huawei_sim(sim.state).fresh_job_404_s = 0.3
    client = TaurusDbClient(config(sim.url))
    job_id = await client.upgrade_starrocks(SR_ID)
    job = await client.get_job(job_id)
    assert job.id == job_id


async def test_unknown_job_404_after_grace(sim) -> None:
    client = TaurusDbClient(config(sim.url))
    slept: list[float] = []

    async def fake_sleep(d: float) -> None:
        slept.append(d)

    with pytest.raises(PermanentCloudError) as info:
        await client.get_job("missing", grace=3, sleep=fake_sleep, clock=lambda: sum(slept))
    assert info.value.status == 404 and sum(slept) <= 3


async def test_flags_sent_as_strings() -> None:
    from shared.clouds.huawei.models.taurusdb import UpgradeStarRocksRequest

    body = UpgradeStarRocksRequest.model_validate({"delay": "true", "is_skip_validate": False})
    assert body.model_dump() == {"delay": "true", "is_skip_validate": "false"}
