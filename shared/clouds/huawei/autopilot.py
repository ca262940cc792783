"""CCE Autopilot upgrade client (seed 002; vendor-facts §3): the upgrade workflow and the stages
it names (precheck, snapshot, upgrade, postcheck), each a separate call under ``/autopilot``.

The stage calls are CCE's (:class:`~shared.clouds.huawei.cce.ClusterUpgradeClient`) under
``/autopilot/v3`` (snapshots ``/autopilot/v3.1``); Autopilot's upgrade has retry but no pause or
continue (§3.3), and its body does not take ``isOnlyUpgrade``.
"""

from __future__ import annotations

from shared.clouds.huawei.cce import ClusterUpgradeClient, validated
from shared.clouds.huawei.models.cce import WorkFlow, WorkFlowList, WorkFlowRequest
from shared.clouds.urls import quote_segment as q

__all__ = ["AutopilotClient"]


class AutopilotClient(ClusterUpgradeClient):
    service = "autopilot"
    prefix = "/autopilot/v3"
    snapshot_prefix = "/autopilot/v3.1"
    only_upgrade_flag = False

    async def create_workflow(
        self, cluster_id: str, target_version: str, *, cluster_version: str | None = None
    ) -> WorkFlow:
        """201 with the workflow; ``.uid`` is its id. Not retried once it may have reached the
        vendor: the stage claims it and reconciles a lost answer from the workflow list."""
        spec = {"clusterID": cluster_id, "targetVersion": target_version}
        if cluster_version:
            spec["clusterVersion"] = cluster_version
        body = validated(WorkFlowRequest, {"spec": spec})
        response = await self._call(
            "POST",
            f"{self._cluster(cluster_id)}/operation/upgradeworkflows",
            endpoint_key="workflows",
            json=body.model_dump(exclude_none=True),
            idempotent=False,
        )
        return self._parse_response(WorkFlow, response)

    async def get_workflow(self, cluster_id: str, workflow_id: str) -> WorkFlow:
        response = await self._call(
            "GET",
            f"{self._cluster(cluster_id)}/operation/upgradeworkflows/{q(workflow_id)}",
            endpoint_key="workflows",
        )
        return self._parse_response(WorkFlow, response)

    async def list_workflows(self, cluster_id: str) -> list[WorkFlow]:
        response = await self._call(
            "GET", f"{self._cluster(cluster_id)}/operation/upgradeworkflows", endpoint_key="workflows"
        )
        return self._parse_response(WorkFlowList, response).items

    async def cancel_workflow(self, cluster_id: str, workflow_id: str) -> WorkFlow:
        """``PATCH {"status": {"phase": "Cancel"}}``; refused while the workflow runs, after it
        succeeded or was cancelled, and while a task of it is initialising or running (§3.1)."""
        response = await self._call(
            "PATCH",
            f"{self._cluster(cluster_id)}/operation/upgradeworkflows/{q(workflow_id)}",
            endpoint_key="workflows",
            json={"status": {"phase": "Cancel"}},
        )
        return self._parse_response(WorkFlow, response)
