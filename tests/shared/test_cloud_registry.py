"""CloudClients: lazily built vendor clients from the fleet, one shared Huawei auth, real calls;
the fleet's ``clouds.oceanbase`` key and its deprecated spelling ``clouds.ocp``."""

from __future__ import annotations

import pytest

from shared.clouds.huawei import AutopilotClient, CceClient, TaurusDbClient
from shared.clouds.ncloud.client import NcloudClient
from shared.clouds.oceanbase.client import OceanBaseClient, OceanBaseConfig
from shared.clouds.registry import CloudClients
from shared.domain.fleet import parse_fleet
from shared.errors import ConfigError
from simulator.core import SimCredentials, SimTarget
from simulator.testing import run_simulator

CREDS = SimCredentials()
ENV = {
    "HW_AK": CREDS.hw_ak,
    "HW_SK": CREDS.hw_sk,
    "OCP_USER": CREDS.ocp_user,
    "OCP_PASSWORD": CREDS.ocp_password,
    "NCP_ACCESS_KEY": CREDS.ncp_ak,
    "NCP_SECRET_KEY": CREDS.ncp_sk,
}


def fleet_text(url: str, oceanbase_key: str = "oceanbase") -> str:
    return f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: {CREDS.hw_project_id},
            endpoints: {{cce: "{url}", autopilot: "{url}", taurusdb: "{url}", iam: "{url}"}}}}
  {oceanbase_key}: {{url: "{url}"}}
  ncloud: {{endpoint: "{url}"}}
targets:
  - {{name: cce-a, kind: cce, cluster_id: c1}}
  - {{name: ob-a, kind: oceanbase, cluster_id: "22", operating_system: el7}}
  - {{name: kafka-a, kind: ncloud-kafka, cluster: 3432149, config_group: 170}}
"""


def test_nothing_is_built_or_read_until_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    clouds = CloudClients.from_fleet(parse_fleet(fleet_text("http://127.0.0.1:9")))
    assert "built=[]" in repr(clouds)
    with pytest.raises(ConfigError) as err:
        _ = clouds.cce
    assert err.value.where == "HW_AK"  # the variable's name, never a value


def test_each_client_is_built_once_with_one_huawei_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    clouds = CloudClients.from_fleet(parse_fleet(fleet_text("http://127.0.0.1:9")))
    assert isinstance(clouds.cce, CceClient) and clouds.cce is clouds.cce
    assert isinstance(clouds.autopilot, AutopilotClient)
    assert isinstance(clouds.taurusdb, TaurusDbClient)
    assert clouds.cce.auth is clouds.autopilot.auth is clouds.taurusdb.auth
    assert isinstance(clouds.oceanbase, OceanBaseClient)
    assert isinstance(clouds.ncloud, NcloudClient)
    assert CREDS.hw_sk not in repr(clouds) and CREDS.hw_sk not in repr(clouds.cce)


def test_an_unconfigured_cloud_is_a_config_error() -> None:
    clouds = CloudClients()
    for attr, section in (
        ("cce", "clouds.huawei"),
        ("oceanbase", "clouds.oceanbase"),
        ("ncloud", "clouds.ncloud"),
    ):
        with pytest.raises(ConfigError) as err:
            getattr(clouds, attr)
        assert err.value.where == section


async def test_clients_talk_to_the_simulator_and_close(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    targets = [
        SimTarget("cce-a", "cce", "c1", "v1.28", ["v1.29"]),
        SimTarget("ob-a", "oceanbase", "22", "4.2.1.0-1", ["4.2.1.8-2"]),
        SimTarget("kafka-a", "ncloud-kafka", "3432149", "2823006", ["3503006"]),
    ]
    async with run_simulator(targets=targets, speed=1.0) as sim:
        clouds = CloudClients.from_fleet(parse_fleet(fleet_text(sim.url)))
        assert (await clouds.cce.get_cluster("c1")).version == "v1.28"
        assert (await clouds.oceanbase.get_cluster(22)).obVersion == "4.2.1.0-1"
        assert (await clouds.ncloud.get_cluster_info(3432149)).kafkaVersionCode == 2823006
        await clouds.close()
        assert "built=[]" in repr(clouds)


@pytest.mark.parametrize("key", ["oceanbase", "ocp"])
def test_the_oceanbase_section_and_its_deprecated_spelling(key: str) -> None:
    fleet = parse_fleet(fleet_text("http://127.0.0.1:9", oceanbase_key=key))
    assert fleet.clouds.oceanbase == OceanBaseConfig(url="http://127.0.0.1:9")
    assert CloudClients.from_fleet(fleet).oceanbase_config == fleet.clouds.oceanbase


def test_both_spellings_of_the_oceanbase_section_are_an_error() -> None:
    text = fleet_text("http://127.0.0.1:9").replace(
        '  oceanbase: {url: "http://127.0.0.1:9"}',
        '  oceanbase: {url: "http://127.0.0.1:9"}\n  ocp: {url: "http://127.0.0.1:8"}',
    )
    assert "  ocp: " in text
    with pytest.raises(ConfigError) as err:
        parse_fleet(text)
    assert "clouds.oceanbase" in str(err.value) and "clouds.ocp" in str(err.value)


def test_an_oceanbase_target_needs_the_section() -> None:
    text = fleet_text("http://127.0.0.1:9").replace('  oceanbase: {url: "http://127.0.0.1:9"}\n', "")
    with pytest.raises(ConfigError, match=r"clouds\.oceanbase is required for oceanbase targets"):
        parse_fleet(text)
