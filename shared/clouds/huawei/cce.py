"""CCE cluster upgrade client (seed 003): precheck, upgrade, follow the task, pause/continue/retry,
postcheck, read the cluster. Requests are validated client side before anything is sent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from shared.clouds._base import quote_segment as q
from shared.clouds.errors import ValidationFailed
from shared.clouds.huawei._client import HuaweiClient
from shared.clouds.huawei.models_cce import (
    CheckTask,
    Cluster,
    UpgradeAnswer,
    UpgradeRequest,
    UpgradeTask,
    UpgradeTaskList,
)

__all__ = ["CceClient", "build_upgrade_request", "validated"]


def validated(model: type[BaseModel], data: Any, *, vendor: str = "huawei") -> Any:
    """``model(data)`` or ``ValidationFailed`` whose message names the first offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"{where}: {first['msg']}", vendor=vendor, field=where) from None


def build_upgrade_request(
    target_version: str,
    *,
    user_defined_step: int | None = None,
    addons: list[dict[str, Any]] | None = None,
    node_pool_order: dict[str, int] | None = None,
    node_order: dict[str, list[dict[str, Any]]] | None = None,
) -> UpgradeRequest:
    action: dict[str, Any] = {"targetVersion": target_version, "strategy": {"type": "inPlaceRollingUpdate"}}
    if user_defined_step is not None:
        action["strategy"]["inPlaceRollingUpdate"] = {"userDefinedStep": user_defined_step}
    for key, value in (("addons", addons), ("nodePoolOrder", node_pool_order), ("nodeOrder", node_order)):
        if value is not None:
            action[key] = value
    return validated(UpgradeRequest, {"spec": {"clusterUpgradeAction": action}})


class CceClient(HuaweiClient):
    service = "cce"
    prefix = "/api/v3"

    def _cluster(self, cluster_id: str, version: str | None = None) -> str:
        return f"{version or self.prefix}/projects/{q(self.project_id)}/clusters/{q(cluster_id)}"

    async def get_cluster(self, cluster_id: str) -> Cluster:
        """Version (``spec.version``) and phase (``Available`` before an upgrade may start)."""
        response = await self._call("GET", self._cluster(cluster_id), endpoint_key="clusters")
        return self._parse(Cluster, response)

    async def precheck(
        self, cluster_id: str, *, cluster_version: str | None, target_version: str
    ) -> CheckTask:
        spec = {"clusterID": cluster_id, "clusterVersion": cluster_version, "targetVersion": target_version}
        body = {"apiVersion": "v3", "kind": "PreCheckTask", "spec": {k: v for k, v in spec.items() if v}}
        response = await self._call(
            "POST", f"{self._cluster(cluster_id)}/operation/precheck", endpoint_key="precheck", json=body
        )
        return self._parse(CheckTask, response)

    async def get_precheck(self, cluster_id: str, task_id: str) -> CheckTask:
        response = await self._call(
            "GET",
            f"{self._cluster(cluster_id)}/operation/precheck/tasks/{q(task_id)}",
            endpoint_key="precheck",
        )
        return self._parse(CheckTask, response)

    async def upgrade(
        self,
        cluster_id: str,
        target_version: str,
        *,
        user_defined_step: int | None = None,
        addons: list[dict[str, Any]] | None = None,
        node_pool_order: dict[str, int] | None = None,
    ) -> UpgradeAnswer:
        """Start the upgrade; ``answer.metadata.uid`` is the task id. ``ValidationFailed`` before
        sending for a malformed version or a step outside 1..120. Not retried once it may have
        reached CCE: reconcile with ``list_upgrade_tasks`` / ``get_cluster`` instead."""
        request = build_upgrade_request(
            target_version,
            user_defined_step=user_defined_step,
            addons=addons,
            node_pool_order=node_pool_order,
        )
        response = await self._call(
            "POST",
            f"{self._cluster(cluster_id)}/operation/upgrade",
            endpoint_key="upgrade",
            json=request.model_dump(exclude_none=True),
            idempotent=False,
        )
        return self._parse(UpgradeAnswer, response)

    async def get_upgrade_task(self, cluster_id: str, task_id: str) -> UpgradeTask:
        response = await self._call(
            "GET", f"{self._cluster(cluster_id)}/operation/upgrade/tasks/{q(task_id)}", endpoint_key="tasks"
        )
        return self._parse(UpgradeTask, response)

    async def list_upgrade_tasks(self, cluster_id: str) -> list[UpgradeTask]:
        response = await self._call(
            "GET", f"{self._cluster(cluster_id)}/operation/upgrade/tasks", endpoint_key="tasks"
        )
        return self._parse(UpgradeTaskList, response).items

    async def _control(self, cluster_id: str, action: str) -> None:
        await self._call(
            "POST",
            f"{self._cluster(cluster_id)}/operation/upgrade/{action}",
            endpoint_key="upgrade",
            json={},
            idempotent=False,
        )

    async def pause_upgrade(self, cluster_id: str) -> None:
        await self._control(cluster_id, "pause")

    async def continue_upgrade(self, cluster_id: str) -> None:
        await self._control(cluster_id, "continue")

    async def retry_upgrade(self, cluster_id: str) -> None:
        await self._control(cluster_id, "retry")

    async def postcheck(
        self, cluster_id: str, *, cluster_version: str | None, target_version: str
    ) -> CheckTask:
        spec = {"clusterID": cluster_id, "clusterVersion": cluster_version, "targetVersion": target_version}
        body = {"apiVersion": "v3", "kind": "PostCheckTask", "spec": {k: v for k, v in spec.items() if v}}
        response = await self._call(
            "POST", f"{self._cluster(cluster_id)}/operation/postcheck", endpoint_key="postcheck", json=body
        )
        return self._parse(CheckTask, response)
