"""CCE and CCE Autopilot request and response bodies (seeds 002 and 003 and their task queries).

Autopilot uses the same shapes under ``/autopilot/v3``; its upgrade body key is
``clusterUpgradeAction`` in the SDK and ``autopilotClusterUpgradeAction`` in Terraform, so the
models read either and write ``clusterUpgradeAction``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

__all__ = [
    "TARGET_VERSION",
    "Cluster",
    "ClusterUpgradeAction",
    "CheckSpec",
    "CheckTask",
    "InPlaceRollingUpdate",
    "Metadata",
    "PointStatus",
    "SnapshotAnswer",
    "SnapshotTask",
    "SnapshotTasks",
    "TaskStatus",
    "UpgradeAddon",
    "UpgradeAnswer",
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

_LOOSE = ConfigDict(extra="allow", populate_by_name=True)
#: Progress comes as a number or as a string ("40", "40%") depending on the endpoint: keep it as text.
Progress = Annotated[str | None, BeforeValidator(lambda v: None if v is None else str(v))]
_STRICT = ConfigDict(extra="forbid", populate_by_name=True)


class Metadata(BaseModel):
    model_config = _LOOSE
    uid: str = ""
    name: str | None = None
    creationTimestamp: str | None = None
    updateTimestamp: str | None = None


class InPlaceRollingUpdate(BaseModel):
    model_config = _STRICT
    userDefinedStep: int | None = Field(None, ge=1, le=120)


class UpgradeStrategy(BaseModel):
    model_config = _STRICT
    type: Literal["inPlaceRollingUpdate"] = "inPlaceRollingUpdate"
    inPlaceRollingUpdate: InPlaceRollingUpdate | None = None


class UpgradeAddon(BaseModel):
    model_config = _STRICT
    addonTemplateName: str
    operation: Literal["patch"] = "patch"
    version: str
    values: dict[str, Any] | None = None


class ClusterUpgradeAction(BaseModel):
    model_config = _STRICT
    addons: list[UpgradeAddon] | None = None
    nodeOrder: dict[str, list[dict[str, Any]]] | None = None
    nodePoolOrder: dict[str, int] | None = None
    strategy: UpgradeStrategy = Field(default_factory=UpgradeStrategy)
    targetVersion: str

    @field_validator("targetVersion")
    @classmethod
    def _version(cls, value: str) -> str:
        if not TARGET_VERSION.match(value):
            raise ValueError("must look like v1.28 or v1.28.3-r0")
        return value


class UpgradeSpec(BaseModel):
    model_config = _STRICT
    clusterUpgradeAction: ClusterUpgradeAction = Field(
        validation_alias=AliasChoices("clusterUpgradeAction", "autopilotClusterUpgradeAction")
    )


class _UpgradeMeta(BaseModel):
    model_config = _STRICT
    apiVersion: Literal["v3"] = "v3"
    kind: Literal["UpgradeTask"] = "UpgradeTask"


class UpgradeRequest(BaseModel):
    """``POST .../operation/upgrade`` (CCE ``/api/v3``, Autopilot ``/autopilot/v3``)."""

    model_config = _STRICT
    metadata: _UpgradeMeta = Field(default_factory=_UpgradeMeta)
    spec: UpgradeSpec


class _AnswerAction(BaseModel):
    model_config = _LOOSE
    version: str | None = None
    targetVersion: str | None = None
    targetPlatformVersion: str | None = None
    strategy: dict[str, Any] | None = None
    config: dict[str, Any] | None = None


class _AnswerSpec(BaseModel):
    model_config = _LOOSE
    clusterUpgradeAction: _AnswerAction | None = Field(
        None, validation_alias=AliasChoices("clusterUpgradeAction", "autopilotClusterUpgradeAction")
    )


class UpgradeAnswer(BaseModel):
    model_config = _LOOSE
    metadata: Metadata
    spec: _AnswerSpec | None = None


class TaskStatus(BaseModel):
    """``phase``: upgrade ``Init|Queuing|Running|Pause|Success|Failed``; checks add ``Error``."""

    model_config = _LOOSE
    phase: str = ""
    progress: Progress = None
    completionTime: str | None = None
    message: str | None = None
    expireTimeStamp: str | None = None


class UpgradeTask(BaseModel):
    """``GET .../operation/upgrade/tasks/{id}``."""

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
    model_config = _LOOSE
    items: list[UpgradeTask] = Field(default_factory=list)


class CheckSpec(BaseModel):
    model_config = _STRICT
    clusterID: str | None = None
    clusterVersion: str | None = None
    targetVersion: str | None = None


class CheckTask(BaseModel):
    """Pre-/post-check task (``POST .../precheck`` answer, ``GET .../precheck/tasks/{id}``)."""

    model_config = _LOOSE
    kind: str | None = None
    metadata: Metadata = Field(default_factory=Metadata)
    spec: dict[str, Any] = Field(default_factory=dict)
    status: TaskStatus = Field(default_factory=TaskStatus)

    @property
    def uid(self) -> str:
        return self.metadata.uid


class Cluster(BaseModel):
    """``GET /api/v3/projects/{p}/clusters/{c}``: ``spec.version``, ``status.phase`` (``Available``)."""

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


class WorkFlowSpec(BaseModel):
    model_config = _STRICT
    clusterID: str
    clusterVersion: str | None = None
    targetVersion: str

    @field_validator("targetVersion")
    @classmethod
    def _version(cls, value: str) -> str:
        if not TARGET_VERSION.match(value):
            raise ValueError("must look like v1.28 or v1.28.3-r0")
        return value


class WorkFlowRequest(BaseModel):
    model_config = _STRICT
    kind: Literal["WorkFlowTask"] = "WorkFlowTask"
    apiVersion: Literal["v3"] = "v3"
    spec: WorkFlowSpec


class PointStatus(BaseModel):
    model_config = _LOOSE
    taskType: str
    taskID: str | None = None
    status: str | None = None
    startTimeStamp: str | None = None
    endTimeStamp: str | None = None
    expireTimeStamp: str | None = None


class WorkFlowStatus(BaseModel):
    """``phase`` ∈ ``Init, Running, Pending, Success, Cancel``."""

    model_config = _LOOSE
    phase: str | None = None
    pointStatuses: list[PointStatus] = Field(default_factory=list)
    lineStatuses: list[dict[str, Any]] = Field(default_factory=list)

    def point(self, task_type: str) -> PointStatus | None:
        return next((p for p in self.pointStatuses if p.taskType == task_type), None)


class WorkFlow(BaseModel):
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
    model_config = _LOOSE
    items: list[WorkFlow] = Field(default_factory=list)


class SnapshotAnswer(BaseModel):
    """``POST /autopilot/v3.1/.../operation/snapshot``: the snapshot task id."""

    model_config = _LOOSE
    uid: str = Field(validation_alias=AliasChoices("uid", "id"))


class SnapshotTask(BaseModel):
    model_config = _LOOSE
    id: str
    status: str = ""  # Queuing | Running | Success | Failed
    progress: Progress = None
    message: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None


class SnapshotTasks(BaseModel):
    """``GET /autopilot/v3.1/.../operation/snapshot/tasks``: every snapshot task, newest last."""

    model_config = _LOOSE
    items: list[SnapshotTask] = Field(default_factory=list)
