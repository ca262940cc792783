"""CCE / Autopilot clients against the (strict) simulator: the documented shapes end to end —
allowed targets, options on the wire, pre-check items, the v3.1 snapshot, no-body controls."""

from __future__ import annotations

import pytest

from shared.clouds.errors import PermanentCloudError, ValidationFailed
from shared.clouds.huawei import AutopilotClient, CceClient
from shared.clouds.huawei.cce import build_upgrade_request
from shared.clouds.sessions import close_sessions
from shared.domain.options.cce import CceOptions
from simulator.huawei import huawei_sim

from .conftest import AP_ID, CCE_ID, config

pytestmark = pytest.mark.usefixtures("hw_env")

OPTIONS = CceOptions.model_validate(
    {
        "scope": "NodePool",
        "is_only_upgrade": True,
        "node_pool_order": {"DefaultPool": 0, "pool-b": 10},
        "node_order": {
            "pool-b": [{"node_selector": {"key": "role", "value": ["edge"], "operator": "in"}, "priority": 3}]
        },
        "addons": [{"addon_template_name": "coredns", "version": "1.30.6", "values": {"replicas": 2}}],
    }
)


@pytest.fixture(autouse=True)
async def _sessions():
    yield
    await close_sessions()


async def test_upgrade_info_and_paths_name_the_allowed_targets(sim) -> None:
    client = CceClient(config(sim.url))
    info = await client.upgrade_info(CCE_ID)
    assert info.current_version == "v1.28.5-r0"
    assert info.spec.versionInfo.release == "v1.28.5" and info.spec.versionInfo.patch == "r0"
    assert info.target_versions == ["v1.29.3-r0", "v1.30.1-r2"]
    paths = await client.upgrade_paths()
    assert [(p.version, p.targetVersions) for p in paths] == [("v1.28", ["v1.29", "v1.30"])]
    assert all(p.platformVersion.startswith("cce.") for p in paths)
    ap = AutopilotClient(config(sim.url))
    assert (await ap.upgrade_info(AP_ID)).target_versions == ["v1.29.3-r0"]
    assert [p.version for p in await ap.upgrade_paths()] == ["v1.28"]


def test_options_map_to_the_sdk_names() -> None:
    body = build_upgrade_request("v1.29", user_defined_step=20, options=OPTIONS).model_dump(exclude_none=True)
    action = body["spec"]["clusterUpgradeAction"]
    assert body["metadata"] == {"apiVersion": "v3", "kind": "UpgradeTask"}
    assert action["strategy"] == {
        "type": "inPlaceRollingUpdate",
        "inPlaceRollingUpdate": {"userDefinedStep": 20, "scope": "NodePool"},
    }
    assert action["isOnlyUpgrade"] is True
    assert action["nodePoolOrder"] == {"DefaultPool": 0, "pool-b": 10}
    assert action["nodeOrder"] == {
        "pool-b": [{"nodeSelector": {"key": "role", "operator": "in", "value": ["edge"]}, "priority": 3}]
    }
    assert action["addons"] == [
        {"addonTemplateName": "coredns", "operation": "patch", "version": "1.30.6", "values": {"replicas": 2}}
    ]


async def test_options_reach_the_wire_and_the_vendor_accepts_them(sim) -> None:
    client = CceClient(config(sim.url))
    uid = (await client.upgrade(CCE_ID, "v1.29", user_defined_step=20, options=OPTIONS)).metadata.uid
    sent = sim.state.jobs[uid].extra["action"]
    assert sent["strategy"]["inPlaceRollingUpdate"] == {"userDefinedStep": 20, "scope": "NodePool"}
    assert sent["isOnlyUpgrade"] is True and sent["addons"][0]["addonTemplateName"] == "coredns"


async def test_autopilot_refuses_is_only_upgrade_before_sending(sim) -> None:
    client = AutopilotClient(config(sim.url))
    with pytest.raises(ValidationFailed) as info:
        await client.upgrade(AP_ID, "v1.29", user_defined_step=20, options=CceOptions(is_only_upgrade=True))
    assert info.value.field == "cce.is_only_upgrade"
    assert sim.state.stats.requests == 0


async def test_user_defined_step_bounds_on_both_sides(sim) -> None:
    client = CceClient(config(sim.url))
    with pytest.raises(ValidationFailed, match="userDefinedStep"):
        await client.upgrade(CCE_ID, "v1.29", user_defined_step=121)
    assert sim.state.stats.requests == 0
    # A service of the older SDKs' age takes at most 40: it names the field in its 400.
    huawei_sim(sim.state).max_user_defined_step = 40
    with pytest.raises(PermanentCloudError) as info:
        await client.upgrade(CCE_ID, "v1.29", user_defined_step=41)
    assert info.value.status == 400 and info.value.code == "CCE.01400001"
    assert "userDefinedStep must be an integer 1..40" in info.value.message
    assert (await client.upgrade(CCE_ID, "v1.29", user_defined_step=40)).metadata.uid


async def test_precheck_needs_the_current_version(sim) -> None:
    client = CceClient(config(sim.url))
    with pytest.raises(ValidationFailed, match="clusterVersion"):
        await client.precheck(CCE_ID, cluster_version="", target_version="v1.29")
    with pytest.raises(PermanentCloudError, match="not the cluster's current version"):
        await client.precheck(CCE_ID, cluster_version="v1.27.1-r0", target_version="v1.29")


async def test_failed_precheck_items_are_read_with_kind_level_group_and_codes(sim) -> None:
    sim.target("cce").extra["precheck"] = "fail"
    client = CceClient(config(sim.url))
    task = await client.precheck(CCE_ID, cluster_version="v1.28.5-r0", target_version="v1.29")
    assert task.status.phase == "Init" and task.status.failed_items() == []
    sim.state.clock.advance(31)
    task = await client.get_precheck(CCE_ID, task.uid)
    assert task.status.phase == "Failed" and "must be fixed" in task.status.message
    items = task.status.failed_items()
    assert [(i.kind, i.level, i.group, i.errorCodes) for i in items] == [
        ("Exception", "Fatal", "NodeCheck", ["Node.0002"]),
        ("Risk", "Warning", "AddonCheck", ["Addon.0106"]),
    ]
    assert items[0].describe().startswith("[Exception/Fatal NodeCheck] NodeStatus (node node-1): node ")
    # and the upgrade's own pre-check (isOnlyUpgrade unset) stops the upgrade the same way
    uid = (await client.upgrade(CCE_ID, "v1.29", user_defined_step=20)).metadata.uid
    sim.state.clock.advance(60)
    upgrade = await client.get_upgrade_task(CCE_ID, uid)
    assert upgrade.status.phase == "Failed" and "NodeStatus" in upgrade.status.message


async def test_postcheck_answers_at_once(sim) -> None:
    client = CceClient(config(sim.url))
    post = await client.postcheck(CCE_ID, cluster_version="v1.28.5-r0", target_version="v1.29")
    assert post.status.phase == "Failed"  # the cluster is not on v1.29
    assert sim.state.stats.calls["cce.postcheck"] == {CCE_ID: 1}


@pytest.mark.parametrize("client_type", [CceClient, AutopilotClient])
async def test_snapshot_task_is_the_top_level_uid_found_by_metadata_uid(sim, client_type) -> None:
    cluster = CCE_ID if client_type is CceClient else AP_ID
    client = client_type(config(sim.url))
    uid = await client.snapshot(cluster)
    task = await client.get_snapshot_task(cluster, uid)
    assert task.uid == uid and task.status.phase == "Init" and task.metadata.creationTimestamp
    sim.state.clock.advance(61)
    task = await client.get_snapshot_task(cluster, uid)
    assert task.status.phase == "Success" and task.status.progress == "100"
    assert [s.type for s in task.spec.items] == ["master-backup"]


async def test_failed_snapshot_says_why(sim) -> None:
    sim.target("autopilot").extra["snapshot"] = "fail"
    client = AutopilotClient(config(sim.url))
    uid = await client.snapshot(AP_ID)
    sim.state.clock.advance(61)
    task = await client.get_snapshot_task(AP_ID, uid)
    assert task.status.phase == "Failed" and "EVS snapshot" in task.message
    with pytest.raises(PermanentCloudError) as info:
        await client.get_snapshot_task(AP_ID, "no-such-task")
    assert info.value.status == 404


async def test_autopilot_has_retry_but_no_pause(sim) -> None:
    client = AutopilotClient(config(sim.url))
    assert not hasattr(client, "pause_upgrade") and not hasattr(client, "continue_upgrade")
    with pytest.raises(PermanentCloudError) as info:
        await client._call("POST", f"{client._cluster(AP_ID)}/operation/upgrade/pause", endpoint_key="x")
    assert (info.value.status, info.value.code) == (404, "APIGW.0101")
    with pytest.raises(PermanentCloudError, match="No upgrade task"):
        await client.retry_upgrade(AP_ID)  # the route exists; there is nothing to retry
