"""CCE Autopilot upgrade client (seed 002): the upgrade workflow and the stages it names
(precheck, snapshot, upgrade, postcheck), each a separate call under ``/autopilot``."""

from __future__ import annotations

from shared.clouds._base import quote_segment as q
from shared.clouds.errors import PermanentCloudError
from shared.clouds.huawei.cce import CceClient, validated
from shared.clouds.huawei.models_cce import (
    SnapshotAnswer,
    SnapshotTask,
    SnapshotTasks,
    WorkFlow,
    WorkFlowList,
    WorkFlowRequest,
)

__all__ = ["AutopilotClient"]


class AutopilotClient(CceClient):
    """Same task shapes as CCE under ``/autopilot/v3`` (snapshot under ``/autopilot/v3.1``)."""

    service = "autopilot"
    prefix = "/autopilot/v3"

    # -- the workflow --------------------------------------------------------------------------
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
        return self._parse(WorkFlow, response)

    async def get_workflow(self, cluster_id: str, workflow_id: str) -> WorkFlow:
        response = await self._call(
            "GET",
            f"{self._cluster(cluster_id)}/operation/upgradeworkflows/{q(workflow_id)}",
            endpoint_key="workflows",
        )
        return self._parse(WorkFlow, response)

    async def list_workflows(self, cluster_id: str) -> list[WorkFlow]:
        response = await self._call(
            "GET", f"{self._cluster(cluster_id)}/operation/upgradeworkflows", endpoint_key="workflows"
        )
        return self._parse(WorkFlowList, response).items

    async def cancel_workflow(self, cluster_id: str, workflow_id: str) -> WorkFlow:
        """``PATCH {"status": {"phase": "Cancel"}}``; refused by the vendor while a task runs."""
        response = await self._call(
            "PATCH",
            f"{self._cluster(cluster_id)}/operation/upgradeworkflows/{q(workflow_id)}",
            endpoint_key="workflows",
            json={"status": {"phase": "Cancel"}},
        )
        return self._parse(WorkFlow, response)

    # -- snapshot (v3.1) -----------------------------------------------------------------------
    async def snapshot(self, cluster_id: str) -> str:
        """Start a pre-upgrade snapshot; returns its task id."""
        response = await self._call(
            "POST",
            f"{self._cluster(cluster_id, '/autopilot/v3.1')}/operation/snapshot",
            endpoint_key="snapshot",
            json={},
            idempotent=False,
        )
        return self._parse(SnapshotAnswer, response).uid

    async def list_snapshot_tasks(self, cluster_id: str) -> list[SnapshotTask]:
        response = await self._call(
            "GET",
            f"{self._cluster(cluster_id, '/autopilot/v3.1')}/operation/snapshot/tasks",
            endpoint_key="snapshot",
        )
        return self._parse(SnapshotTasks, response).items

    async def get_snapshot_task(self, cluster_id: str, task_id: str) -> SnapshotTask:
        """The snapshot API only lists; pick ours out of the list."""
        for task in await self.list_snapshot_tasks(cluster_id):
            if task.id == task_id:
                return task
        raise PermanentCloudError(
            f"snapshot task {task_id} not found", vendor=self.vendor, code="client.not_found", status=404
        )
