from __future__ import annotations

import pytest

from shared.clouds.errors import PermanentCloudError, ValidationFailed
from shared.clouds.huawei import AutopilotClient, CceClient
from shared.clouds.sessions import close_sessions

from .conftest import AP_ID, CCE_ID, config

pytestmark = pytest.mark.usefixtures("hw_env")


@pytest.fixture(autouse=True)
async def _sessions():
    yield
    await close_sessions()


async def test_cce_precheck_upgrade_postcheck(sim) -> None:
    client = CceClient(config(sim.url))
    cluster = await client.get_cluster(CCE_ID)
    assert cluster.phase == "Available" and cluster.version == "v1.28.5-r0"
    check = await client.precheck(CCE_ID, cluster_version=cluster.version, target_version="v1.29")
    assert check.status.phase == "Init"
    sim.state.clock.advance(60)
    assert (await client.get_precheck(CCE_ID, check.uid)).status.phase == "Success"
    answer = await client.upgrade(CCE_ID, "v1.29", user_defined_step=20)
    assert answer.spec.clusterUpgradeAction.targetVersion == "v1.29.3-r0"
    task_id = answer.metadata.uid
    sim.state.clock.advance(300)
    task = await client.get_upgrade_task(CCE_ID, task_id)
    assert task.status.phase == "Running" and task.progress == 50.0
    assert (await client.get_cluster(CCE_ID)).phase == "Upgrading"
    await client.pause_upgrade(CCE_ID)
    sim.state.clock.advance(10_000)
    assert (await client.get_upgrade_task(CCE_ID, task_id)).status.phase == "Pause"
    await client.continue_upgrade(CCE_ID)
    sim.state.clock.advance(301)
    assert (await client.get_upgrade_task(CCE_ID, task_id)).status.phase == "Success"
    assert [t.uid for t in await client.list_upgrade_tasks(CCE_ID)] == [task_id]
    assert (await client.get_cluster(CCE_ID)).version == "v1.29.3-r0"
    post = await client.postcheck(CCE_ID, cluster_version="v1.29.3-r0", target_version="v1.29.3-r0")
    assert post.status.phase == "Success"


async def test_cce_failed_task_then_retry(sim) -> None:
    sim.target("cce").fail_next = True
    client = CceClient(config(sim.url))
    task_id = (await client.upgrade(CCE_ID, "v1.30.1-r2")).metadata.uid
    sim.state.clock.advance(600)
    task = await client.get_upgrade_task(CCE_ID, task_id)
    assert task.status.phase == "Failed" and task.status.message
    await client.retry_upgrade(CCE_ID)
    sim.state.clock.advance(600)
    assert (await client.get_upgrade_task(CCE_ID, task_id)).status.phase == "Success"


async def test_cce_rejects_unknown_version_and_conflict(sim) -> None:
    client = CceClient(config(sim.url))
    with pytest.raises(PermanentCloudError) as info:
        await client.upgrade(CCE_ID, "v1.99")
    assert info.value.status == 400 and info.value.code.startswith("CCE.")
    await client.upgrade(CCE_ID, "v1.29")
    with pytest.raises(PermanentCloudError) as info:
        await client.upgrade(CCE_ID, "v1.30")
    assert info.value.status == 409


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_version": "1.29", "user_defined_step": 20}, "targetVersion"),
        ({"target_version": "v1.29", "user_defined_step": 0}, "userDefinedStep"),
        ({"target_version": "v1.29", "user_defined_step": 121}, "userDefinedStep"),
    ],
)
async def test_client_side_validation_names_the_field(sim, kwargs, field) -> None:
    client = CceClient(config(sim.url))
    with pytest.raises(ValidationFailed) as info:
        await client.upgrade(CCE_ID, kwargs.pop("target_version"), **kwargs)
    assert field in str(info.value) and field in info.value.field
    assert sim.state.stats.requests == 0  # nothing was sent


async def test_autopilot_workflow_through_all_points(sim) -> None:
    client = AutopilotClient(config(sim.url))
    wf = await client.create_workflow(AP_ID, "v1.29.3-r0", cluster_version="v1.28.5-r0")
    assert wf.status.phase == "Init" and [p.taskType for p in wf.status.pointStatuses] == [
        "PreCheck",
        "Snapshot",
        "Cluster",
        "PostCheck",
    ]
    assert [w.uid for w in await client.list_workflows(AP_ID)] == [wf.uid]
    check = await client.precheck(AP_ID, cluster_version="v1.28.5-r0", target_version="v1.29.3-r0")
    with pytest.raises(PermanentCloudError):
        await client.cancel_workflow(AP_ID, wf.uid)  # refused while a task runs
    sim.state.clock.advance(31)
    assert (await client.get_precheck(AP_ID, check.uid)).status.phase == "Success"
    snap = await client.snapshot(AP_ID)
    sim.state.clock.advance(61)
    assert (await client.get_snapshot_task(AP_ID, snap)).status.phase == "Success"
    task_id = (await client.upgrade(AP_ID, "v1.29.3-r0")).metadata.uid
    sim.state.clock.advance(100)
    wf = await client.get_workflow(AP_ID, wf.uid)
    assert wf.status.phase == "Running" and wf.status.point("Cluster").status == "Running"
    assert wf.status.point("Cluster").taskID == task_id
    sim.state.clock.advance(600)
    post = await client.postcheck(AP_ID, cluster_version="v1.29.3-r0", target_version="v1.29.3-r0")
    assert post.status.phase == "Success"
    wf = await client.get_workflow(AP_ID, wf.uid)
    assert wf.status.phase == "Success"
    assert [p.status for p in wf.status.pointStatuses] == ["Success"] * 4


async def test_autopilot_cancel_and_terraform_body_key(sim) -> None:
    client = AutopilotClient(config(sim.url))
    wf = await client.create_workflow(AP_ID, "v1.29")
    assert (await client.cancel_workflow(AP_ID, wf.uid)).status.phase == "Cancel"
    with pytest.raises(PermanentCloudError, match="Cancel"):
        await client.cancel_workflow(AP_ID, wf.uid)  # already cancelled
    # The Terraform spelling of the body key, without a strategy (both UNCONFIRMED for Autopilot):
    # the simulator accepts it; our model reads it but insists on the strategy when we send.
    body = {
        "metadata": {"apiVersion": "v3", "kind": "UpgradeTask"},
        "spec": {"autopilotClusterUpgradeAction": {"targetVersion": "v1.29"}},
    }
    response = await client._call(
        "POST", f"{client._cluster(AP_ID)}/operation/upgrade", endpoint_key="x", json=body, idempotent=False
    )
    from shared.clouds.huawei.models.cce import UpgradeAnswer, UpgradeSpec

    assert UpgradeAnswer.model_validate(response.json()).metadata.uid
    action = {"targetVersion": "v1.29", "strategy": {"type": "inPlaceRollingUpdate"}}
    spec = UpgradeSpec.model_validate({"autopilotClusterUpgradeAction": action})
    assert spec.clusterUpgradeAction.targetVersion == "v1.29"
    assert "clusterUpgradeAction" in spec.model_dump()
