"""NcloudClient against the simulator over loopback HTTP: auth, the documented answer shapes,
precheck rules, the rolling upgrade and its progress, the version list and config groups."""

from __future__ import annotations

import time

import aiohttp
import pytest
from yarl import URL

from shared.clouds import close_sessions
from shared.clouds.errors import (
    AuthError,
    PermanentCloudError,
    ThrottledError,
    TransientCloudError,
    ValidationFailed,
)
from shared.clouds.ncloud import client as ncloud_module
from shared.clouds.ncloud.client import NcloudClient, NcloudConfig, signature_v2
from shared.clouds.ncloud.models import ClusterInfo, KafkaVersion
from shared.clouds.retry import RetryPolicy
from shared.clouds.urls import encode_query
from simulator.core import SimCredentials
from simulator.ncloud import DSS
from simulator.testing import run_simulator
from tests.clouds.ncloud.vectors import QUERY

CREDS = SimCredentials()
NO, OLD, NEW, CFG = 3432149, 2823006, 3503006, 170  # kafka-dev-a: 3 brokers; 170 is 3503006's group
ONCE = RetryPolicy(attempts=1)


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
    config = {k: kw.pop(k) for k in ("catalog_ttl_s",) if k in kw}
    return NcloudClient(NcloudConfig(endpoint=sim.url, region=region, retry=retry, **config), **kw)


def calls(sim, op: str) -> dict[str, int]:
    return sim.state.stats.snapshot()["calls"].get(op, {})


@pytest.mark.parametrize("region", ["KR", "SGN", "JPN"])
async def test_cluster_info_in_each_region(sim, region: str) -> None:
    info = await client(sim, region).get_cluster_info(NO)
    assert (info.clusterName, info.kafkaVersionCode, info.state, info.configGroupNo) == (
        "kafka-dev-a",
        OLD,
        "running",
        170,
    )


def test_version_codes_are_read_from_the_documented_strings() -> None:
    info = ClusterInfo.model_validate({"kafkaVersionCode": "3903006", "status": "running", "extra": 1})
    assert info.kafkaVersionCode == 3903006
    assert KafkaVersion.model_validate({"kafkaVersionCode": "2403005"}).kafkaVersionCode == 2403005
    with pytest.raises(PermanentCloudError) as bad:
        NcloudClient._parse(ClusterInfo, {"kafkaVersionCode": "3.9.0", "status": "running"})
    assert bad.value.code == "bad_answer"


async def test_precheck_refuses_a_version_not_later_with_10153(sim) -> None:
    c = client(sim)
    for code in (OLD, 1000000):
        with pytest.raises(PermanentCloudError) as info:
            await c.precheck(NO, code, CFG)
        assert info.value.code == "10153" and "later" in info.value.message
    with pytest.raises(PermanentCloudError) as info:
        await c.precheck(NO, 9999999, CFG)
    assert info.value.code == "10154"


async def test_a_config_group_of_another_version_is_refused(sim) -> None:
    c = client(sim)
    for call in (c.precheck, c.rolling_upgrade):
        with pytest.raises(PermanentCloudError) as wrong:
            await call(NO, NEW, 171)  # 171 was created for 3703006
        assert wrong.value.code == "10156" and "3703006" in wrong.value.message
    with pytest.raises(PermanentCloudError) as missing:
        await c.precheck(NO, NEW, 999)
    assert missing.value.code == "10157"


async def test_rolling_upgrade_needs_a_passing_precheck(sim) -> None:
    with pytest.raises(PermanentCloudError) as info:
        await client(sim).rolling_upgrade(NO, NEW, CFG)
    assert info.value.code == "10155"


async def test_rolling_upgrade_turns_brokers_over_one_by_one(sim) -> None:
    c = client(sim)
    assert await c.precheck(NO, NEW, CFG) is True
    assert await c.rolling_upgrade(NO, NEW, CFG) is True
    orange_hosts: list[str] = []
    for _ in range(30):
        sim.state.clock.advance(60)
        progress = await c.upgrade_progress(NO)
        info = await c.get_cluster_info(NO)
        if info.state == "running":
            break
        assert info.state == "changing" and info.kafkaVersionCode == OLD  # the code changes last
        assert (
            progress.colour == "orange" and progress.brokerNumber == progress.brokerNodeTotalNumber - 1 == 2
        )
        [host] = [n.hostname for n in progress.brokerStatusPerNode if n.status == "orange"]
        if not orange_hosts or orange_hosts[-1] != host:
            orange_hosts.append(host)
    assert orange_hosts == [f"kafka-dev-a-broker-{i}" for i in (1, 2, 3)]
    assert (info.state, info.kafkaVersionCode, info.configGroupNo) == ("running", NEW, CFG)
    assert progress.colour == "green" and progress.all_up
    status = await c.get_cluster_status(NO)  # getClusterStatus has the same shape
    assert status.colour == "green" and [n.status for n in status.brokerStatusPerNode] == ["green"] * 3
    assert calls(sim, "ncloud.upgrade") == {str(NO): 1}


async def test_failed_upgrade_turns_a_broker_red_and_keeps_the_version(sim) -> None:
    c = client(sim)
    sim.state.targets[str(NO)].fail_next = True
    await c.precheck(NO, NEW, CFG)
    await c.rolling_upgrade(NO, NEW, CFG)
    sim.state.clock.advance(5000)
    progress = await c.upgrade_progress(NO)
    assert progress.colour == "red" and [n.status for n in progress.brokerStatusPerNode].count("red") == 1
    info = await c.get_cluster_info(NO)
    assert (info.state, info.kafkaVersionCode) == ("error", OLD)


async def test_second_upgrade_while_one_runs_is_busy(sim) -> None:
    c = client(sim)
    await c.precheck(NO, NEW, CFG)
    await c.rolling_upgrade(NO, NEW, CFG)
    with pytest.raises(TransientCloudError) as info:
        await c.precheck(NO, 3703006, 171)
    assert info.value.code == "10105" and info.value.conflict and not info.value.maybe_applied


async def test_busy_codes_are_configurable(sim) -> None:
    c = NcloudClient(NcloudConfig(endpoint=sim.url, retry=ONCE, busy_codes=frozenset({10155})))
    with pytest.raises(TransientCloudError) as busy:
        await c.rolling_upgrade(NO, NEW, CFG)
    assert busy.value.code == "10155"


async def test_version_list_and_the_config_groups_of_a_version(sim) -> None:
    c = client(sim)
    versions = {v.kafkaVersionCode: v for v in await c.kafka_versions()}
    assert versions[3903006].kafkaVersionName == "Kafka 3.9.0"
    assert versions[3903006].applicationVersionName == "Kafka 3.9.0, CMAK 3.0.0.6"
    groups = await c.version_config_groups(NEW)
    assert [(g.configGroupNo, g.kafkaVersionCode) for g in groups] == [(170, NEW)]
    assert await c.version_config_groups(9999999) == []


async def test_config_groups_are_read_page_by_page(sim, monkeypatch) -> None:
    monkeypatch.setattr(ncloud_module, "GROUP_PAGE_SIZE", 5)
    for no in range(500, 512):
        sim.runner.app[DSS].add_group(
            {"configGroupNo": no, "configGroupName": f"g{no}", "kafkaVersionCode": "3903006"}
        )
    groups = await client(sim).version_config_groups(3903006)
    assert sorted(g.configGroupNo for g in groups) == [190, *range(500, 512)]
    assert sum(calls(sim, "ncloud.config_groups").values()) == 3


async def test_catalogs_are_cached_for_their_ttl(sim) -> None:
    c = client(sim)
    for _ in range(3):
        await c.kafka_versions()
        await c.version_config_groups(NEW)
    assert (
        sum(calls(sim, "ncloud.versions").values()) == 1 == sum(calls(sim, "ncloud.config_groups").values())
    )
    fresh = client(sim, catalog_ttl_s=0)
    await fresh.kafka_versions()
    await fresh.kafka_versions()
    assert sum(calls(sim, "ncloud.versions").values()) == 3


async def test_a_query_needing_encoding_is_signed_as_sent(sim) -> None:
    """Spaces, unicode, ``+``, ``/``, ``=``: encoded once, sent and signed as those bytes; the
    simulator's own verifier (written apart from the client) accepts it."""
    result = await client(sim)._result("GET", "/cluster/getCDSSVersionList", key="versions", params=QUERY)
    assert result["kafkaVersionList"]
    assert sim.state.stats.auth_failures.get("ncloud", 0) == 0


async def test_a_signature_over_the_unencoded_query_is_refused(sim) -> None:
    # What the generated SDKs do (vendor-facts §6): sign "name=Kafka 3.9.0&..." but send it encoded.
    ts = str(int(time.time() * 1000))
    path = "/api/v1/cluster/getCDSSVersionList"
    unencoded = path + "?" + "&".join(f"{k}={v}" for k, v in QUERY)
    headers = {
        "x-ncp-apigw-timestamp": ts,
        "x-ncp-iam-access-key": CREDS.ncp_ak,
        "x-ncp-apigw-signature-v2": signature_v2("GET", unencoded, ts, CREDS.ncp_ak, CREDS.ncp_sk),
    }
    query = encode_query(QUERY)
    async with aiohttp.ClientSession() as http:
        url = URL(f"{sim.url}{path}?{query}", encoded=True)
        async with http.get(url, headers=headers) as r:
            assert r.status == 401 and (await r.json())["error"]["errorCode"] == "200"


async def test_client_side_validation(sim) -> None:
    c = client(sim)
    with pytest.raises(ValidationFailed) as info:
        await c.precheck(NO, -1, CFG)
    assert info.value.field == "upgradeKafkaVersionCode"
    with pytest.raises(ValidationFailed):
        await c.get_cluster_status(0)
    with pytest.raises(ValidationFailed):
        await c.upgrade_progress(True)  # type: ignore[arg-type]
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


async def test_unknown_api_is_a_permanent_error_with_the_envelope(sim) -> None:
    with pytest.raises(PermanentCloudError) as info:
        await client(sim)._result("POST", "/cluster/noSuchThing", key="x", json={})
    assert (info.value.status, info.value.code) == (404, "10004") and info.value.request_id


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
    c = client(sim, retry=RetryPolicy(attempts=20, base=0.001, cap=0.002, deadline=10))
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
    assert (await c.get_cluster_info(NO)).state == "changing"
    assert calls(sim, "ncloud.upgrade") == {str(NO): 1}


async def test_secrets_never_in_repr_str_or_logs(sim, monkeypatch, log_buf) -> None:
    monkeypatch.setenv("NCP_SECRET_KEY", "a-very-secret-ncp-key")
    c = client(sim, retry=RetryPolicy(attempts=2, base=0.001, cap=0.001))
    sim.state.faults.update({"ncloud": {"error_rates": {"500": 1.0}}})
    with pytest.raises(TransientCloudError) as info:
        await c.get_cluster_info(NO)
    sim.state.faults.clear()
    with pytest.raises(AuthError) as auth:
        await c.get_cluster_info(NO)
    for text in (repr(c), str(c), str(info.value), repr(auth.value), str(auth.value), log_buf.getvalue()):
        assert "a-very-secret-ncp-key" not in text
    assert "cloud.retry" in log_buf.getvalue()
