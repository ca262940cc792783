"""Pydantic models of the OceanBase OCP API (seed 001) — requests, the envelope, task DAGs.

Responses are parsed leniently (unknown fields ignored: OCP adds fields between releases);
requests are strict and validated before anything is sent. Sources, as in vendor-facts §5:
seed 001 (the legacy upgrade page), common-ocp-10000000002169663 (the current upgrade page),
community-ocp-en-10000000000779408 / common-ocp-10000000001188044 (tasks),
enterprise-oceanbase-ocp-en-10000000000390694 (clusters), and oceanbase/ocp-express (the
open-source OCP server code: ``core/response/*`` for the envelope and ``ApiError``).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CLUSTER_STATUSES",
    "SUBTASK_STATUSES",
    "TASK_STATUSES",
    "UPGRADE_TASK_NAME",
    "Cluster",
    "Envelope",
    "ErrorBody",
    "RollingUpgrade",
    "RpmUpgrade",
    "SubTask",
    "TaskInstance",
    "TaskPage",
    "UpgradeRequest",
]

_VERSION = re.compile(r"^\d+(\.\d+){1,4}(-\d+)?$")

#: Task ``status`` (task detail page; ocp-express ``TaskState``). The page types it "Integer";
#: the values are these strings.
TASK_STATUSES = ("RUNNING", "FAILED", "SUCCESSFUL")
#: Subtask ``status`` (task detail page; ocp-express ``SubtaskState``).
SUBTASK_STATUSES = ("PENDING", "READY", "RUNNING", "CANCELING", "FAILED", "SUCCESSFUL")
#: Cluster ``status`` (enterprise-oceanbase-ocp-en-10000000000390694). There is no UPGRADING: an
#: upgrading cluster presumably shows OPERATING (unconfirmed, vendor-facts §5.3). Nothing here
#: decides on it; the version (``obVersion``) and the task list do.
CLUSTER_STATUSES = (
    "RUNNING",
    "CREATING",
    "DELETING",
    "STARTING",
    "RESTARTING",
    "STOPPING",
    "STOPPED",
    "TAKINGOVER",
    "MOVINGOUT",
    "SWITCHOVER",
    "FAILOVER",
    "OPERATING",
)
#: The ``name`` of the task an upgrade call starts (seed 001's sample answer; OB-MCP
#: ``ocp-doc-min/10.task-management.md``): how the task list is searched for it.
UPGRADE_TASK_NAME = "Submit upgrade OB cluster dag"


class RpmUpgrade(BaseModel):
    """The legacy body: upgrade to the version in an RPM already uploaded to OCP (seed 001:
    ``rpmFileName``, String, required, e.g. ``oceanbase-2.2.76-20210219154519.el7.x86_64.rpm``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpmFileName: str = Field(min_length=5, max_length=255)

    @field_validator("rpmFileName")
    @classmethod
    def _rpm(cls, v: str) -> str:
        if not v.endswith(".rpm") or "/" in v:
            raise ValueError("must be a package file name ending in .rpm (no directory)")
        return v


class RollingUpgrade(BaseModel):
    """The new body (common-ocp-10000000002169663), where ``rpmFileName`` is deprecated:
    ``upgradeMode`` (Enum, e.g. ROLLING), ``destVersion`` (e.g. ``2.2.77-202204041221``),
    ``operatingSystem`` (e.g. ``el7``); optional ``freezeServer`` (Boolean) and ``zoneOrder``
    (Array of zone names, for the primary cluster)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Only ROLLING is documented; the page's list of values was not retrieved, so any upper-case
    #: name is let through (the fleet option ``upgrade_mode`` says which).
    upgradeMode: str = Field("ROLLING", pattern=r"^[A-Z][A-Z_]{0,31}$")
    destVersion: str
    operatingSystem: str = Field(min_length=1, max_length=64)
    freezeServer: bool | None = None
    zoneOrder: list[str] | None = None

    @field_validator("destVersion")
    @classmethod
    def _version(cls, v: str) -> str:
        if not _VERSION.match(v):
            raise ValueError("must look like 4.2.1.8-108000022024072217 (dotted numbers, optional -build)")
        return v

    @field_validator("zoneOrder")
    @classmethod
    def _zones(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or len(set(v)) != len(v) or not all(v)):
            raise ValueError("must list distinct, non-empty zone names")
        return v


UpgradeRequest = RpmUpgrade | RollingUpgrade


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SubTask(_Lenient):
    """One node of a task DAG (task detail page): ``id, name, description, status, operation,
    runTime, paralleIdx (-1 = not parallel), upstreams[], downstreams[]`` and times.
    ``status`` is one of :data:`SUBTASK_STATUSES`; ``operation`` one of EXECUTE, RETRY, ROLLBACK,
    SKIP, CANCEL."""

    id: int
    name: str = ""
    description: str = ""
    status: str
    operation: str | None = None
    runTime: int | None = None
    paralleIdx: int | None = None
    upstreams: list[int] = Field(default_factory=list)
    downstreams: list[int] = Field(default_factory=list)
    startTime: str | None = None
    finishTime: str | None = None


class TaskInstance(_Lenient):
    """An asynchronous OCP task (task detail page): ``id, name, taskDefinitionId, cluster{id,
    name, obClusterId, type}, tenant, creator{id, name}, status, type, operation, executor,
    prohibitRollback, startTime, finishTime, subtasks[]``. ``status`` is one of
    :data:`TASK_STATUSES`."""

    id: int
    name: str = ""
    status: str
    taskDefinitionId: int | None = None
    cluster: dict[str, Any] | None = None
    creator: dict[str, Any] | None = None
    type: str | None = None
    operation: str | None = None
    startTime: str | None = None
    finishTime: str | None = None
    #: Not documented; read when an OCP gives it (the failed subtask's log is the documented
    #: source: ``GET …/subtasks/{sid}/log``).
    errorMessage: str | None = None
    #: The DAG is ``tasks`` in the upgrade answer (seed 001) and ``subtasks`` in task details.
    subtasks: list[SubTask] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _tasks_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "subtasks" not in data and "tasks" in data:
            data = {**data, "subtasks": data["tasks"]}
        return data

    @property
    def terminal(self) -> bool:
        return self.status in ("SUCCESSFUL", "FAILED")

    @property
    def failed_subtasks(self) -> list[SubTask]:
        return [s for s in self.subtasks if s.status == "FAILED"]


class Cluster(_Lenient):
    """``GET /api/v2/ob/clusters/{id}``: ``status`` is one of :data:`CLUSTER_STATUSES`."""

    id: int
    name: str = ""
    obClusterId: int | None = None
    obVersion: str = ""
    status: str = ""
    type: str | None = None


class TaskPage(_Lenient):
    """``GET /api/v2/tasks/instances`` → ``data{contents[], page{totalElements, totalPages,
    number, size}}`` (task list page; ocp-express ``PaginatedResponse``, ``CustomPage``)."""

    contents: list[TaskInstance] = Field(default_factory=list)
    page: dict[str, Any] = Field(default_factory=dict)

    @property
    def total_pages(self) -> int:
        try:
            return int(self.page.get("totalPages") or 0)
        except (TypeError, ValueError):
            return 0


class ErrorBody(_Lenient):
    """``error`` of a failed answer (ocp-express ``ApiError``): ``code`` (int; 0 when none),
    ``message``, ``debugMessage``, ``target``, ``subErrors[{object, field, rejectedValue,
    message}]`` (validation failures)."""

    code: int | str | None = None
    message: str = ""
    debugMessage: str | None = None
    target: Any = None
    subErrors: list[dict[str, Any]] | None = None


class Envelope(_Lenient):
    """Every OCP answer: ``{data, successful, timestamp, duration, status, traceId, server}``
    (seed 001); a failure has ``successful: false`` and ``error`` instead of ``data``
    (ocp-express ``ErrorResponse``)."""

    data: Any = None
    successful: bool = False
    timestamp: str | None = None
    duration: int | None = None
    status: int | None = None
    traceId: str | None = None
    server: str | None = None
    error: ErrorBody | None = None
