"""CCE cluster upgrade client (seed 003; vendor-facts §2): the cluster and its allowed upgrade
targets, pre-check, upgrade (follow the task; pause/continue/retry), post-check, master snapshot.
Requests are validated client side before anything is sent.

:class:`ClusterUpgradeClient` holds what CCE and CCE Autopilot share (Autopilot's calls are the
same under ``/autopilot``); :class:`CceClient` adds CCE's pause and continue.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from shared.clouds.errors import PermanentCloudError, ValidationFailed
from shared.clouds.huawei._client import HuaweiClient
from shared.clouds.huawei.models.cce import (
    CheckRequest,
    CheckTask,
    Cluster,
    SnapshotAnswer,
    SnapshotTask,
    SnapshotTasks,
    UpgradeAnswer,
    UpgradeInfo,
    UpgradePath,
    UpgradePaths,
    UpgradeRequest,
    UpgradeTask,
    UpgradeTaskList,
)
from shared.clouds.urls import quote_segment as q
from shared.domain.options.cce import CceOptions

__all__ = ["CceClient", "ClusterUpgradeClient", "build_upgrade_request", "validated"]

M = TypeVar("M", bound=BaseModel)

#: POSTs that take no body still declare the type the API wants (its pages mark it mandatory).
_JSON = {"Content-Type": "application/json"}


def validated(model: type[M], data: object, *, vendor: str = "huawei") -> M:
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
    options: CceOptions | None = None,
    allow_only_upgrade: bool = True,
) -> UpgradeRequest:
    """The upgrade body, fleet options mapped to the SDK's JSON names (``shared/domain/options/cce.py``).

    ``allow_only_upgrade=False`` (Autopilot) refuses ``is_only_upgrade``, which only CCE documents."""
    opts = options or CceOptions()
    rolling: dict[str, Any] = {}
    if user_defined_step is not None:
        rolling["userDefinedStep"] = user_defined_step
    if opts.scope is not None:
        rolling["scope"] = opts.scope
    if rolling and "userDefinedStep" not in rolling:
        raise ValidationFailed(
            "cce.scope: needs strategy.user_defined_step (the API requires userDefinedStep beside scope)",
            vendor="huawei",
            field="cce.scope",
        )
    strategy: dict[str, Any] = {"type": "inPlaceRollingUpdate"}
    if rolling:
        strategy["inPlaceRollingUpdate"] = rolling
    action: dict[str, Any] = {"targetVersion": target_version, "strategy": strategy}
    if opts.addons:
        action["addons"] = [
            {
                "addonTemplateName": a.addon_template_name,
                "operation": a.operation,
                "version": a.version,
                **({"values": a.values} if a.values is not None else {}),
            }
            for a in opts.addons
        ]
    if opts.node_pool_order:
        action["nodePoolOrder"] = dict(opts.node_pool_order)
    if opts.node_order:
        action["nodeOrder"] = {
            pool: [
                {
                    "nodeSelector": {
                        "key": p.node_selector.key,
                        "operator": p.node_selector.operator,
                        **({"value": list(p.node_selector.value)} if p.node_selector.value else {}),
                    },
                    "priority": p.priority,
                }
                for p in batches
            ]
            for pool, batches in opts.node_order.items()
        }
    if opts.is_only_upgrade is not None:
        if not allow_only_upgrade:
            raise ValidationFailed(
                "cce.is_only_upgrade: CCE Autopilot's upgrade does not take isOnlyUpgrade",
                vendor="huawei",
                field="cce.is_only_upgrade",
            )
        action["isOnlyUpgrade"] = opts.is_only_upgrade
    return validated(UpgradeRequest, {"spec": {"clusterUpgradeAction": action}})


class ClusterUpgradeClient(HuaweiClient):
    """The calls CCE and CCE Autopilot share, under ``prefix`` (snapshots under ``snapshot_prefix``)."""

    prefix: ClassVar[str]
    snapshot_prefix: ClassVar[str]
    #: Whether the upgrade body may carry ``isOnlyUpgrade``.
    only_upgrade_flag: ClassVar[bool]

    def _cluster(self, cluster_id: str, version: str | None = None) -> str:
        return f"{version or self.prefix}/projects/{q(self.project_id)}/clusters/{q(cluster_id)}"

    # -- the cluster and where it may go -------------------------------------------------------
    async def get_cluster(self, cluster_id: str) -> Cluster:
        """Version (``spec.version``) and phase (``Available`` before an upgrade may start)."""
        response = await self._call("GET", self._cluster(cluster_id), endpoint_key="clusters")
        return self._parse_response(Cluster, response)

    async def upgrade_info(self, cluster_id: str) -> UpgradeInfo:
        """``GET .../upgradeinfo``: the current version (``versionInfo.release``/``patch``) and the
        versions this cluster may be upgraded to (``versionInfo.targetVersions``)."""
        response = await self._call(
            "GET", f"{self._cluster(cluster_id)}/upgradeinfo", endpoint_key="clusters"
        )
        return self._parse_response(UpgradeInfo, response)

    async def upgrade_paths(self) -> list[UpgradePath]:
        """``GET {prefix}/clusterupgradepaths``: the region's upgrade paths (no project in the path)."""
        response = await self._call("GET", f"{self.prefix}/clusterupgradepaths", endpoint_key="clusters")
        return self._parse_response(UpgradePaths, response).upgradePaths

    # -- checks --------------------------------------------------------------------------------
    async def precheck(self, cluster_id: str, *, cluster_version: str, target_version: str) -> CheckTask:
        """Start a pre-check; ``cluster_version`` must be the cluster's current patch version."""
        if not cluster_version:
            raise ValidationFailed(
                "spec.clusterVersion: the pre-check needs the cluster's current version",
                vendor=self.vendor,
                field="spec.clusterVersion",
            )
        body = validated(
            CheckRequest,
            {
                "kind": "PreCheckTask",
                "spec": {
                    "clusterID": cluster_id,
                    "clusterVersion": cluster_version,
                    "targetVersion": target_version,
                },
            },
        )
        response = await self._call(
            "POST",
            f"{self._cluster(cluster_id)}/operation/precheck",
            endpoint_key="precheck",
            json=body.model_dump(exclude_none=True),
        )
        return self._parse_response(CheckTask, response)

    async def get_precheck(self, cluster_id: str, task_id: str) -> CheckTask:
        response = await self._call(
            "GET",
            f"{self._cluster(cluster_id)}/operation/precheck/tasks/{q(task_id)}",
            endpoint_key="precheck",
        )
        return self._parse_response(CheckTask, response)

    async def postcheck(
        self, cluster_id: str, *, cluster_version: str | None, target_version: str
    ) -> CheckTask:
        """The post-check answers synchronously: ``status.phase`` Success | Failed | Error.
        ``cluster_version`` is the version before the upgrade, ``target_version`` the current one."""
        spec = {"clusterID": cluster_id, "clusterVersion": cluster_version, "targetVersion": target_version}
        body = validated(CheckRequest, {"kind": "PostCheckTask", "spec": spec})
        response = await self._call(
            "POST",
            f"{self._cluster(cluster_id)}/operation/postcheck",
            endpoint_key="postcheck",
            json=body.model_dump(exclude_none=True),
        )
        return self._parse_response(CheckTask, response)

    # -- the upgrade ---------------------------------------------------------------------------
    async def upgrade(
        self,
        cluster_id: str,
        target_version: str,
        *,
        user_defined_step: int | None = None,
        options: CceOptions | None = None,
    ) -> UpgradeAnswer:
        """Start the upgrade; ``answer.metadata.uid`` is the task id. ``ValidationFailed`` before
        sending for a malformed version, a step outside 1..120 or an option the API refuses. Not
        retried once it may have reached CCE: reconcile with ``list_upgrade_tasks`` instead."""
        request = build_upgrade_request(
            target_version,
            user_defined_step=user_defined_step,
            options=options,
            allow_only_upgrade=self.only_upgrade_flag,
        )
        response = await self._call(
            "POST",
            f"{self._cluster(cluster_id)}/operation/upgrade",
            endpoint_key="upgrade",
            json=request.model_dump(exclude_none=True),
            idempotent=False,
        )
        return self._parse_response(UpgradeAnswer, response)

    async def get_upgrade_task(self, cluster_id: str, task_id: str) -> UpgradeTask:
        response = await self._call(
            "GET", f"{self._cluster(cluster_id)}/operation/upgrade/tasks/{q(task_id)}", endpoint_key="tasks"
        )
        return self._parse_response(UpgradeTask, response)

    async def list_upgrade_tasks(self, cluster_id: str) -> list[UpgradeTask]:
        response = await self._call(
            "GET", f"{self._cluster(cluster_id)}/operation/upgrade/tasks", endpoint_key="tasks"
        )
        return self._parse_response(UpgradeTaskList, response).items

    async def _control(self, cluster_id: str, action: str) -> None:
        """``POST .../operation/upgrade/{action}``: no body either way (vendor-facts §2.1)."""
        await self._call(
            "POST",
            f"{self._cluster(cluster_id)}/operation/upgrade/{action}",
            endpoint_key="upgrade",
            headers=dict(_JSON),
            idempotent=False,
        )

    async def retry_upgrade(self, cluster_id: str) -> None:
        await self._control(cluster_id, "retry")

    # -- master snapshot (v3.1) ----------------------------------------------------------------
    async def snapshot(self, cluster_id: str) -> str:
        """Start a master snapshot (no body); returns its task id, the answer's top-level ``uid``."""
        response = await self._call(
            "POST",
            f"{self._cluster(cluster_id, self.snapshot_prefix)}/operation/snapshot",
            endpoint_key="snapshot",
            headers=dict(_JSON),
            idempotent=False,
        )
        return self._parse_response(SnapshotAnswer, response).uid

    async def list_snapshot_tasks(self, cluster_id: str) -> list[SnapshotTask]:
        response = await self._call(
            "GET",
            f"{self._cluster(cluster_id, self.snapshot_prefix)}/operation/snapshot/tasks",
            endpoint_key="snapshot",
        )
        return self._parse_response(SnapshotTasks, response).items

    async def get_snapshot_task(self, cluster_id: str, task_id: str) -> SnapshotTask:
        """The snapshot API only lists: ours is the item whose ``metadata.uid`` is ``task_id``."""
        for task in await self.list_snapshot_tasks(cluster_id):
            if task.uid == task_id:
                return task
        raise PermanentCloudError(
            f"snapshot task {task_id} not found", vendor=self.vendor, code="client.not_found", status=404
        )


class CceClient(ClusterUpgradeClient):
    """CCE (``/api/v3``; snapshots ``/api/v3.1``), with pause and continue (continue is marked
    deprecated in the EU docs, vendor-facts §2.1)."""

    service = "cce"
    prefix = "/api/v3"
    snapshot_prefix = "/api/v3.1"
    only_upgrade_flag = True

    async def pause_upgrade(self, cluster_id: str) -> None:
        await self._control(cluster_id, "pause")

    async def continue_upgrade(self, cluster_id: str) -> None:
        await self._control(cluster_id, "continue")
