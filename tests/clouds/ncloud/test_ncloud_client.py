"""NcloudClient against the simulator over loopback HTTP: auth, precheck rules, rolling upgrade."""

from __future__ import annotations

import time

import aiohttp
import pytest

from shared.clouds import _base, close_sessions
from shared.clouds.errors import (
    AuthError,
    PermanentCloudError,
    ThrottledError,
    TransientCloudError,
    ValidationFailed,
)
from shared.clouds.ncloud import NcloudClient, NcloudConfig
from simulator.core import SimCredentials
from simulator.testing import run_simulator

CREDS = SimCredentials()
NO, OLD, NEW, CFG = 3432149, 2823006, 3503006, 170
ONCE = _base.RetryPolicy(attempts=1)


@pytest.fixture(autouse=True)
def ncp_env(monkeypatch):
    monkeypatch.setenv("NCP_ACCESS_KEY", CREDS.ncp_ak)
    monkeypatch.setenv("NCP_SECRET_KEY", CREDS.ncp_sk)


@pytest.fixture
async def sim():
    async with run_simulator(speed=1.0) as handle:
        yield handle
    await close_sessions()


def client(sim, region: str = "KR", retry=ONCE, **kw) -> NcloudClient:
    return NcloudClient(NcloudConfig(endpoint=sim.url, region=region, retry=retry), **kw)


@pytest.mark.parametrize("region", ["KR", "SGN", "JPN"])
async def test_cluster_info_in_each_region(sim, region: str) -> None:
    info = await client(sim, region).get_cluster_info(NO)
    assert (info.serviceGroupInstanceNo, info.kafkaVersionCode) == (NO, OLD)


async def test_precheck_refuses_a_version_not_later_with_10153(sim) -> None:
    c = client(sim)
    for code in (OLD, 1000000):
        with pytest.raises(PermanentCloudError) as info:
            await c.precheck(NO, code, CFG)
        assert info.value.code == "10153" and "later" in info.value.message
    with pytest.raises(PermanentCloudError) as info:
        await c.precheck(NO, 9999999, CFG)
    assert info.value.code == "10154"


async def test_rolling_upgrade_needs_a_passing_precheck(sim) -> None:
    with pytest.raises(PermanentCloudError) as info:
        await client(sim).rolling_upgrade(NO, NEW, CFG)
    assert info.value.code == "10155"


async def test_rolling_upgrade_to_the_end_version_code_changes_last(sim) -> None:
    c = client(sim)
    assert await c.precheck(NO, NEW, CFG) is True
    assert await c.rolling_upgrade(NO, NEW, CFG) is True
    seen_mixed = False
    for _ in range(20):
        sim.state.clock.advance(100)
        status = await c.get_cluster_status(NO)
        info = await c.get_cluster_info(NO)
        codes = {b.kafkaVersionCode for b in status.brokerNodeList}
        if status.status == "upgrading":
            assert info.kafkaVersionCode == OLD
            assert [b.status for b in status.brokerNodeList].count("upgrading") == 1
            seen_mixed |= codes == {OLD, NEW}
        else:
            break
    assert status.status == "running" and codes == {NEW} and info.kafkaVersionCode == NEW
    assert seen_mixed
    assert sim.state.stats.snapshot()["calls"]["ncloud.upgrade"] == {str(NO): 1}


async def test_failed_upgrade_reports_fail_reason_and_keeps_version(sim) -> None:
    c = client(sim)
    sim.state.targets[str(NO)].fail_next = True
    await c.precheck(NO, NEW, CFG)
    await c.rolling_upgrade(NO, NEW, CFG)
    sim.state.clock.advance(5000)
    status = await c.get_cluster_status(NO)
    assert status.status == "error" and status.failReason
    assert "error" in {b.status for b in status.brokerNodeList}
    assert (await c.get_cluster_info(NO)).kafkaVersionCode == OLD


async def test_second_upgrade_while_one_runs_is_busy(sim) -> None:
    c = client(sim)
    await c.precheck(NO, NEW, CFG)
    await c.rolling_upgrade(NO, NEW, CFG)
    with pytest.raises(TransientCloudError) as info:
        await c.precheck(NO, 3703006, CFG)
    assert info.value.code == "10105" and not info.value.maybe_applied


async def test_client_side_validation(sim) -> None:
    c = client(sim)
    with pytest.raises(ValidationFailed) as info:
        await c.precheck(NO, -1, CFG)
    assert info.value.field == "upgradeKafkaVersionCode"
    with pytest.raises(ValidationFailed):
        await c.get_cluster_status(0)
    assert sim.state.stats.snapshot()["calls"] == {}


@pytest.mark.parametrize(("env", "skew"), [({"NCP_SECRET_KEY": "wrong-secret"}, 0), ({}, 600)])
async def test_auth_failures(sim, monkeypatch, env, skew) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(AuthError) as info:
        await client(sim, clock=lambda: time.time() + skew).get_cluster_info(NO)
    assert (info.value.status, info.value.code) == (401, "200")


async def test_missing_headers_get_gateway_401(sim) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{sim.url}/api/v1/cluster/getClusterStatus/{NO}")
        body = await r.json()
    assert r.status == 401
    assert body["error"]["errorCode"] == "200" and body["error"]["message"] == "Authentication Failed"


async def test_throttling_and_server_errors(sim) -> None:
    sim.state.faults.update({"ncloud": {"error_rates": {"429": 1.0}, "retry_after": 5}})
    with pytest.raises(ThrottledError) as throttled:
        await client(sim).get_cluster_info(NO)
    assert throttled.value.retry_after == 5
    sim.state.faults.update({"ncloud": {"error_rates": {"503": 1.0}}})
    with pytest.raises(TransientCloudError) as unavailable:
        await client(sim).get_cluster_info(NO)
    assert unavailable.value.status == 503 and not unavailable.value.maybe_applied


async def test_retries_recover_from_transient_faults(sim) -> None:
    sim.state.faults.update({"ncloud": {"error_rates": {"503": 0.5}, "retry_after": 0}})
    c = client(sim, retry=_base.RetryPolicy(attempts=20, base=0.001, cap=0.002, deadline=10))
    for _ in range(5):
        assert (await c.get_cluster_info(NO)).kafkaVersionCode == OLD


async def test_commit_then_drop_on_upgrade(sim) -> None:
    c = client(sim)
    await c.precheck(NO, NEW, CFG)
    sim.state.faults.update({"ncloud": {"drop_after_commit_rate": 1.0}})
    with pytest.raises(TransientCloudError) as info:
        await c.rolling_upgrade(NO, NEW, CFG)
    assert info.value.maybe_applied
    sim.state.faults.clear()
    assert (await c.get_cluster_status(NO)).status == "upgrading"
    assert sim.state.stats.snapshot()["calls"]["ncloud.upgrade"] == {str(NO): 1}


async def test_secrets_never_in_repr_str_or_logs(sim, monkeypatch, log_buf) -> None:
    monkeypatch.setenv("NCP_SECRET_KEY", "a-very-secret-ncp-key")
    c = client(sim, retry=_base.RetryPolicy(attempts=2, base=0.001, cap=0.001))
    sim.state.faults.update({"ncloud": {"error_rates": {"500": 1.0}}})
    with pytest.raises(TransientCloudError) as info:
        await c.get_cluster_info(NO)
    sim.state.faults.clear()
    with pytest.raises(AuthError) as auth:
        await c.get_cluster_info(NO)
    for text in (repr(c), str(c), str(info.value), repr(auth.value), str(auth.value), log_buf.getvalue()):
        assert "a-very-secret-ncp-key" not in text
    assert "cloud.retry" in log_buf.getvalue()
