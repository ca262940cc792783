"""CCE and CCE Autopilot request and response bodies, as Huawei documents them.

Sources, named per model below (paths relative to
``huaweicloud/huaweicloud-sdk-python-v3 huaweicloud-sdk-cce/huaweicloudsdkcce/v3/model/``, read
at @268f1d3 unless said otherwise; "seed 002/003" are the API pages in ``shared/seeds``;
"vendor-facts §n" is ``shared/seeds/vendor-facts.md``). Autopilot uses the same shapes under
``/autopilot/v3`` (snapshots under ``/autopilot/v3.1``). Requests are strict (``extra="forbid"``,
enums as ``Literal``) and validated before anything is sent; answers are tolerant of fields we do
not model (``extra="allow"``) and of enum values we do not know (kept as ``str``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

__all__ = [
    "CHECK_PHASES",
    "MAX_USER_DEFINED_STEP",
    "TARGET_VERSION",
    "TASK_PHASES",
    "CheckItem",
    "CheckRequest",
    "CheckSpec",
    "CheckTask",
    "Cluster",
    "ClusterUpgradeAction",
    "InPlaceRollingUpdate",
    "LineStatus",
    "Metadata",
    "NodePriority",
    "NodeSelector",
    "PointStatus",
    "PrecheckStatus",
    "Progress",
    "SnapshotAnswer",
    "SnapshotTask",
    "SnapshotTasks",
    "TaskStatus",
    "UpgradeAddon",
    "UpgradeAnswer",
    "UpgradeInfo",
    "UpgradePath",
    "UpgradePaths",
    "UpgradeRequest",
    "UpgradeSpec",
    "UpgradeStrategy",
    "UpgradeTask",
    "UpgradeTaskList",
    "WorkFlow",
    "WorkFlowList",
    "WorkFlowRequest",
    "WorkFlowSpec",
    "WorkFlowStatus",
]

#: ``v1.28`` or ``v1.28.3`` or ``v1.28.3-r0``.
TARGET_VERSION = re.compile(r"^v\d+\.\d+(\.\d+)?(-r\d+)?$")
#: ``inPlaceRollingUpdate.userDefinedStep`` range. The newest SDK models say ``[1-120]``
#: (``in_place_rolling_update.py`` @268f1d3, and the Go/Java/C#/C++ SDKs alike); SDKs before the
#: ``scope`` field said ``[1, 40]`` (@e9b972b; vendor-facts §2.1 read that one). The fleet
#: (``shared/domain/fleet.py`` ``Strategy``) bounds the same 1..120 at load time.
MAX_USER_DEFINED_STEP = 120
#: Upgrade task phases (``upgrade_task_status.py``; seed 003, vendor-facts §2.1).
TASK_PHASES = ("Init", "Queuing", "Running", "Pause", "Success", "Failed")
#: Pre-check task phases (vendor-facts §2.2); the post-check answers Success | Failed | Error.
CHECK_PHASES = ("Init", "Running", "Success", "Failed", "Error")

_LOOSE = ConfigDict(extra="allow", populate_by_name=True)
_STRICT = ConfigDict(extra="forbid", populate_by_name=True)
#: Progress is a string in the SDK (``"40"``); tolerate a number too.
Progress = Annotated[str | None, BeforeValidator(lambda v: None if v is None else str(v))]


def _check_version(value: str) -> str:
    if not TARGET_VERSION.match(value):
        raise ValueError("must look like v1.28 or v1.28.3-r0")
    return value


class Metadata(BaseModel):
    """``metadata`` of every CCE object (``metadata.py``, ``upgrade_task_metadata.py``)."""

    model_config = _LOOSE
    uid: str = ""
    name: str | None = None
    creationTimestamp: str | None = None
    updateTimestamp: str | None = None


# -- the upgrade request (seed 003; cluster_upgrade_action.py and the models it names) ---------


class InPlaceRollingUpdate(BaseModel):
    """``in_place_rolling_update.py``: ``userDefinedStep`` (required there), ``scope``."""

    model_config = _STRICT
    userDefinedStep: int = Field(ge=1, le=MAX_USER_DEFINED_STEP)
    scope: Literal["Cluster", "NodePool"] | None = None


class UpgradeStrategy(BaseModel):
    """``upgrade_strategy.py``: only ``inPlaceRollingUpdate`` exists."""

    model_config = _STRICT
    type: Literal["inPlaceRollingUpdate"] = "inPlaceRollingUpdate"
    inPlaceRollingUpdate: InPlaceRollingUpdate | None = None


class UpgradeAddon(BaseModel):
    """``upgrade_addon_config.py``: all but ``values`` required."""

    model_config = _STRICT
    addonTemplateName: str = Field(min_length=1)
    operation: Literal["patch"] = "patch"
    version: str = Field(min_length=1)
    values: dict[str, Any] | None = None


class NodeSelector(BaseModel):
    """``node_selector.py``: ``key`` and ``operator`` required."""

    model_config = _STRICT
    key: str = Field(min_length=1)
    value: list[str] | None = None
    operator: Literal["in", "notin", "exists", "!", "gt", "lt"]


class NodePriority(BaseModel):
    """``node_priority.py``: both fields required; priority non-negative, larger first."""

    model_config = _STRICT
    nodeSelector: NodeSelector
    priority: int = Field(ge=0)


class ClusterUpgradeAction(BaseModel):
    """``cluster_upgrade_action.py``: ``strategy`` and ``targetVersion`` required (seed 003 too)."""

    model_config = _STRICT
    addons: list[UpgradeAddon] | None = None
    nodeOrder: dict[str, list[NodePriority]] | None = None
    nodePoolOrder: dict[str, Annotated[int, Field(ge=0)]] | None = None
    strategy: UpgradeStrategy
    targetVersion: str
    #: CCE only (not in the Autopilot upgrade page, vendor-facts §3.3).
    isOnlyUpgrade: bool | None = None

    @field_validator("targetVersion")
    @classmethod
    def _version(cls, value: str) -> str:
        return _check_version(value)


class UpgradeSpec(BaseModel):
    """The key is ``clusterUpgradeAction`` for CCE and for Autopilot (its page and the SDK;
    Terraform sends ``autopilotClusterUpgradeAction``, vendor-facts §3.3): read either, write it."""

    # _STRICT spelt out: the pydantic mypy plugin sees populate_by_name only in a literal config.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    clusterUpgradeAction: ClusterUpgradeAction = Field(
        validation_alias=AliasChoices("clusterUpgradeAction", "autopilotClusterUpgradeAction")
    )


class _UpgradeMeta(BaseModel):
    """``upgrade_cluster_request_metadata.py``: fixed ``v3`` / ``UpgradeTask``, both required."""

    model_config = _STRICT
    apiVersion: Literal["v3"] = "v3"
    kind: Literal["UpgradeTask"] = "UpgradeTask"


class UpgradeRequest(BaseModel):
    """``POST .../operation/upgrade`` (CCE ``/api/v3``, Autopilot ``/autopilot/v3``)."""

    model_config = _STRICT
    metadata: _UpgradeMeta = Field(default_factory=_UpgradeMeta)
    spec: UpgradeSpec


# -- answers -----------------------------------------------------------------------------------


class _AnswerAction(BaseModel):
    model_config = _LOOSE
    version: str | None = None
    targetVersion: str | None = None
    targetPlatformVersion: str | None = None
    strategy: dict[str, Any] | None = None
    config: dict[str, Any] | None = None


class _AnswerSpec(BaseModel):
    # _LOOSE spelt out: the pydantic mypy plugin sees populate_by_name only in a literal config.
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    clusterUpgradeAction: _AnswerAction | None = Field(
        None, validation_alias=AliasChoices("clusterUpgradeAction", "autopilotClusterUpgradeAction")
    )


class UpgradeAnswer(BaseModel):
    """The upgrade's answer (seed 003): ``metadata.uid`` is the task id."""

    model_config = _LOOSE
    metadata: Metadata
    spec: _AnswerSpec | None = None


class TaskStatus(BaseModel):
    """``upgrade_task_status.py``: ``phase`` (:data:`TASK_PHASES`), ``progress`` (a string),
    ``completionTime``; ``message`` where a failed task says why."""

    model_config = _LOOSE
    phase: str = ""
    progress: Progress = None
    completionTime: str | None = None
    message: str | None = None


class UpgradeTask(BaseModel):
    """``GET .../operation/upgrade/tasks/{id}`` (``show_upgrade_cluster_task_response.py``)."""

    model_config = _LOOSE
    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)
    status: TaskStatus = Field(default_factory=TaskStatus)

    @property
    def uid(self) -> str:
        return self.metadata.uid

    @property
    def progress(self) -> float | None:
        match = re.search(r"\d+(\.\d+)?", self.status.progress or "")
        return float(match.group()) if match else None


class UpgradeTaskList(BaseModel):
    """``GET .../operation/upgrade/tasks``: ``{apiVersion, kind, metadata, items[]}``, no paging."""

    model_config = _LOOSE
    items: list[UpgradeTask] = Field(default_factory=list)


# -- pre-check and post-check (vendor-facts §2.2, §2.3) ----------------------------------------


class CheckSpec(BaseModel):
    """``precheck_spec.py`` / ``postcheck_spec.py``. The pre-check page (2024-11) marks all three
    mandatory, ``clusterVersion`` being the cluster's current *patch* version; for the post-check
    ``clusterVersion`` is the version before the upgrade and ``targetVersion`` the current one."""

    model_config = _STRICT
    clusterID: str = Field(min_length=1)
    clusterVersion: str | None = None
    targetVersion: str = Field(min_length=1)


class CheckRequest(BaseModel):
    """``POST .../operation/precheck`` / ``.../postcheck`` (seed 003 family; vendor-facts §2.2-2.3)."""

    model_config = _STRICT
    apiVersion: Literal["v3"] = "v3"
    kind: Literal["PreCheckTask", "PostCheckTask"]
    spec: CheckSpec


class CheckItem(BaseModel):
    """One check item (``pre_check_item_status.py``): ``kind`` Exception (must be fixed) | Risk
    (may be skipped once confirmed); ``group`` LimitCheck | MasterCheck | NodeCheck | AddonCheck |
    ExecuteException; ``level`` Info | Warning | Fatal; ``phase`` Init | Running | Success |
    Failed; ``errorCodes[]``; ``riskSource`` (configuration, deprecated API, node, add-on risks)."""

    model_config = _LOOSE
    name: str = ""
    kind: str | None = None
    group: str | None = None
    level: str | None = None
    phase: str | None = None
    message: str | None = None
    errorCodes: list[str] = Field(default_factory=list)
    riskSource: dict[str, Any] | None = None

    def describe(self) -> str:
        """``[Exception/Fatal NodeCheck] name: message (errorCodes: A, B)``."""
        tags = "/".join(t for t in (self.kind, self.level) if t)
        head = " ".join(t for t in (tags, self.group) if t)
        text = f"[{head}] {self.name}" if head else self.name
        if self.message:
            text += f": {self.message}"
        if self.errorCodes:
            text += f" (errorCodes: {', '.join(self.errorCodes)})"
        return text


class _ItemsStatus(BaseModel):
    """``cluster_check_status.py`` / ``addon_check_status.py``: ``{phase, itemsStatus[]}``."""

    model_config = _LOOSE
    phase: str | None = None
    itemsStatus: list[CheckItem] = Field(default_factory=list)


class _NodeStage(BaseModel):
    model_config = _LOOSE
    nodeInfo: dict[str, Any] = Field(default_factory=dict)  # {uid, name, status, nodeType}
    itemsStatus: list[CheckItem] = Field(default_factory=list)


class _NodeCheckStatus(BaseModel):
    model_config = _LOOSE
    phase: str | None = None
    nodeStageStatus: list[_NodeStage] = Field(default_factory=list)


class PrecheckStatus(TaskStatus):
    """``precheck_status.py``: the task phase (:data:`CHECK_PHASES`), ``expireTimeStamp`` (when
    the result stops being valid), ``message`` (the execution error log), and the items per
    cluster, add-on and node."""

    expireTimeStamp: str | None = None
    clusterCheckStatus: _ItemsStatus | None = None
    addonCheckStatus: _ItemsStatus | None = None
    nodeCheckStatus: _NodeCheckStatus | None = None

    def items(self) -> list[CheckItem]:
        out: list[CheckItem] = []
        for group in (self.clusterCheckStatus, self.addonCheckStatus):
            if group is not None:
                out.extend(group.itemsStatus)
        if self.nodeCheckStatus is not None:
            for node in self.nodeCheckStatus.nodeStageStatus:
                name = node.nodeInfo.get("name") or node.nodeInfo.get("uid")
                for item in node.itemsStatus:
                    out.append(
                        item.model_copy(update={"name": f"{item.name} (node {name})"}) if name else item
                    )
        return out

    def failed_items(self) -> list[CheckItem]:
        """The items that did not pass, blocking ones (``Exception``) first."""
        failed = [i for i in self.items() if i.phase == "Failed"]
        return sorted(failed, key=lambda i: i.kind != "Exception")


class CheckTask(BaseModel):
    """A pre-check task (``POST .../precheck`` answer, ``GET .../precheck/tasks/{id}``) or the
    post-check's synchronous answer (``status.phase`` only)."""

    model_config = _LOOSE
    kind: str | None = None
    metadata: Metadata = Field(default_factory=Metadata)
    spec: dict[str, Any] = Field(default_factory=dict)
    status: PrecheckStatus = Field(default_factory=PrecheckStatus)

    @property
    def uid(self) -> str:
        return self.metadata.uid


# -- the cluster and its upgrade targets -------------------------------------------------------


class Cluster(BaseModel):
    """``GET .../clusters/{c}``: ``spec.version``, ``status.phase`` (``Available`` before an
    upgrade; also Upgrading, RollingBack, RollbackFailed, Unavailable, Error — §2.1)."""

    model_config = _LOOSE
    metadata: Metadata = Field(default_factory=Metadata)
    spec: dict[str, Any] = Field(default_factory=dict)
    status: dict[str, Any] = Field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.spec.get("version", ""))

    @property
    def phase(self) -> str:
        return str(self.status.get("phase", ""))


class _VersionInfo(BaseModel):
    """``upgrade_version_info.py``: ``release`` ("v1.19.10"), ``patch`` ("r0"), ``suggestPatch``,
    ``targetVersions[]`` (the versions this cluster may be upgraded to)."""

    model_config = _LOOSE
    release: str | None = None
    patch: str | None = None
    suggestPatch: str | None = None
    targetVersions: list[str] | None = None


class _UpgradeInfoSpec(BaseModel):
    """``upgrade_info_spec.py``: ``lastUpgradeInfo`` (``upgrade_info_status.py``: phase Init |
    Running | Pause | Success | Failed, progress, completionTime), ``versionInfo``."""

    model_config = _LOOSE
    lastUpgradeInfo: TaskStatus | None = None
    versionInfo: _VersionInfo | None = None


class UpgradeInfo(BaseModel):
    """``GET .../clusters/{c}/upgradeinfo`` (ShowClusterUpgradeInfo, vendor-facts §2.4)."""

    model_config = _LOOSE
    spec: _UpgradeInfoSpec = Field(default_factory=_UpgradeInfoSpec)

    @property
    def current_version(self) -> str | None:
        """``release`` and ``patch`` put together: ``v1.28.5-r0``."""
        info = self.spec.versionInfo
        if info is None or not info.release:
            return None
        return f"{info.release}-{info.patch}" if info.patch else info.release

    @property
    def target_versions(self) -> list[str] | None:
        info = self.spec.versionInfo
        return None if info is None else info.targetVersions


class UpgradePath(BaseModel):
    """``upgrade_path.py``: ``version`` (``v1.19.16-r20`` up to v1.19, ``v1.21`` after),
    ``platformVersion`` (``cce.X.Y``), ``targetVersions[]``."""

    model_config = _LOOSE
    version: str = ""
    platformVersion: str | None = None
    targetVersions: list[str] = Field(default_factory=list)


class UpgradePaths(BaseModel):
    """``GET /api/v3/clusterupgradepaths`` (no project; Autopilot: ``/autopilot/v3/...``)."""

    model_config = _LOOSE
    upgradePaths: list[UpgradePath] = Field(default_factory=list)


# -- the upgrade workflow (seed 002; vendor-facts §3.1) ----------------------------------------


class WorkFlowSpec(BaseModel):
    """Seed 002 table 4: ``clusterID`` and ``targetVersion`` mandatory."""

    model_config = _STRICT
    clusterID: str = Field(min_length=1)
    clusterVersion: str | None = None
    targetVersion: str

    @field_validator("targetVersion")
    @classmethod
    def _version(cls, value: str) -> str:
        return _check_version(value)


class WorkFlowRequest(BaseModel):
    """Seed 002 table 3: ``kind`` WorkFlowTask, ``apiVersion`` v3, ``spec``, all mandatory."""

    model_config = _STRICT
    kind: Literal["WorkFlowTask"] = "WorkFlowTask"
    apiVersion: Literal["v3"] = "v3"
    spec: WorkFlowSpec


class PointStatus(BaseModel):
    """Seed 002 table 9: ``taskType`` Cluster | PreCheck | Rollback | Snapshot | PostCheck;
    ``status`` Init | Queuing | Running | Success | Failed; ``expireTimeStamp`` for PreCheck."""

    model_config = _LOOSE
    taskType: str
    taskID: str | None = None
    status: str | None = None
    startTimeStamp: str | None = None
    endTimeStamp: str | None = None
    expireTimeStamp: str | None = None


class LineStatus(BaseModel):
    """Seed 002 tables 10-11: a path ``startPoint{taskType}`` -> ``endPoint{taskType}``;
    ``critical`` is a String in the page and a bool in the SDK (``line_status.py``): either."""

    model_config = _LOOSE
    startPoint: dict[str, Any] = Field(default_factory=dict)
    endPoint: dict[str, Any] = Field(default_factory=dict)
    critical: bool | str | None = None


class WorkFlowStatus(BaseModel):
    """Seed 002 table 8: ``phase`` Init | Running | Pending (a task failed) | Success | Cancel."""

    model_config = _LOOSE
    phase: str | None = None
    pointStatuses: list[PointStatus] = Field(default_factory=list)
    lineStatuses: list[LineStatus] = Field(default_factory=list)

    def point(self, task_type: str) -> PointStatus | None:
        return next((p for p in self.pointStatuses if p.taskType == task_type), None)


class WorkFlow(BaseModel):
    """Seed 002 table 5: ``{kind, apiVersion, metadata, spec, status}``; ``metadata.uid`` is its id."""

    model_config = _LOOSE
    kind: str | None = None
    apiVersion: str | None = None
    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)
    status: WorkFlowStatus = Field(default_factory=WorkFlowStatus)

    @property
    def uid(self) -> str:
        return self.metadata.uid


class WorkFlowList(BaseModel):
    """``GET .../upgradeworkflows``: ``kind: List`` with ``items[]``."""

    model_config = _LOOSE
    items: list[WorkFlow] = Field(default_factory=list)


# -- the master snapshot (v3.1; vendor-facts §2.6, §3.4) ---------------------------------------


class SnapshotAnswer(BaseModel):
    """``POST .../v3.1/.../operation/snapshot`` (``create_cluster_master_snapshot_response.py``):
    ``{uid, metadata{apiVersion, kind}}`` — the task id is the *top-level* ``uid``."""

    model_config = _LOOSE
    uid: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class _SnapshotSubtask(BaseModel):
    """``snapshot_spec_items.py``: ``type`` master-backup | master-backup-rollback; ``status``
    Init | Queuing | Running | Pause | Success | Failed (the docs mark ``spec.items`` deprecated)."""

    model_config = _LOOSE
    id: str | None = None
    type: str | None = None
    status: str | None = None
    message: str | None = None
    creationTimestamp: str | None = None
    updateTimestamp: str | None = None


class _SnapshotSpec(BaseModel):
    model_config = _LOOSE
    items: list[_SnapshotSubtask] = Field(default_factory=list)


class _SnapshotStatus(BaseModel):
    """``snapshot_status.py``: ``phase`` (values not enumerated anywhere; Terraform reads Success
    as done and Failed as failed, anything else as running), ``progress``, ``completionTime``."""

    model_config = _LOOSE
    phase: str = ""
    progress: Progress = None
    completionTime: str | None = None


class SnapshotTask(BaseModel):
    """One entry of the snapshot task list (``snapshot_task.py``)."""

    model_config = _LOOSE
    metadata: Metadata = Field(default_factory=Metadata)
    spec: _SnapshotSpec = Field(default_factory=_SnapshotSpec)
    status: _SnapshotStatus = Field(default_factory=_SnapshotStatus)

    @property
    def uid(self) -> str:
        return self.metadata.uid

    @property
    def message(self) -> str | None:
        """What the failed subtasks say (the task itself carries no message)."""
        texts = [s.message for s in self.spec.items if s.message and s.status == "Failed"]
        return "; ".join(texts) or None


class SnapshotTasks(BaseModel):
    """``GET .../v3.1/.../operation/snapshot/tasks`` (``list_cluster_master_snapshot_tasks_response.py``):
    ``{apiVersion, kind, metadata, items[], status{latestBackupTime}}``; no parameters."""

    model_config = _LOOSE
    items: list[SnapshotTask] = Field(default_factory=list)
    status: dict[str, Any] = Field(default_factory=dict)
