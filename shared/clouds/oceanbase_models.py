"""Pydantic models of the OceanBase OCP API (seed 001) — requests, the envelope, task DAGs.

Responses are parsed leniently (unknown fields ignored: OCP adds fields between releases);
requests are strict and validated before anything is sent.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "OcpCluster",
    "OcpEnvelope",
    "OcpErrorBody",
    "RollingUpgrade",
    "RpmUpgrade",
    "SubTask",
    "TaskInstance",
    "TaskPage",
    "UpgradeRequest",
]

_VERSION = re.compile(r"^\d+(\.\d+){1,4}(-\d+)?$")


class RpmUpgrade(BaseModel):
    """Older OCP: upgrade to the version in an RPM already uploaded to OCP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpmFileName: str = Field(min_length=5, max_length=255)

    @field_validator("rpmFileName")
    @classmethod
    def _rpm(cls, v: str) -> str:
        if not v.endswith(".rpm") or "/" in v:
            raise ValueError("must be a package file name ending in .rpm (no directory)")
        return v


class RollingUpgrade(BaseModel):
    """Newer OCP: ``rpmFileName`` is deprecated for a destination version and upgrade mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upgradeMode: Literal["ROLLING", "STOP_SERVICE"] = "ROLLING"
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
    """One node of a task DAG. ``status`` ∈ PENDING, READY, RUNNING, CANCELING, FAILED, SUCCESSFUL."""

    id: int
    name: str = ""
    description: str = ""
    status: str
    operation: str | None = None
    upstreams: list[int] = Field(default_factory=list)
    downstreams: list[int] = Field(default_factory=list)


class TaskInstance(_Lenient):
    """An asynchronous OCP task. ``status`` ∈ RUNNING, FAILED, SUCCESSFUL."""

    id: int
    name: str = ""
    status: str
    cluster: dict[str, Any] | None = None
    startTime: str | None = None
    finishTime: str | None = None
    #: Why a FAILED task failed (the failed subtask's error), when OCP says.
    errorMessage: str | None = None
    #: OCP calls the DAG nodes ``subtasks`` in the task API and ``tasks`` in the upgrade answer.
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


class OcpCluster(_Lenient):
    id: int
    name: str = ""
    obClusterId: int | None = None
    obVersion: str = ""
    status: str = ""


class TaskPage(_Lenient):
    contents: list[TaskInstance] = Field(default_factory=list)
    page: dict[str, Any] = Field(default_factory=dict)


class OcpErrorBody(_Lenient):
    code: int | str | None = None
    message: str = ""
    status: str | None = None


class OcpEnvelope(_Lenient):
    """Every OCP answer: ``{data, successful, timestamp, duration, status, traceId, server}``."""

    data: Any = None
    successful: bool = False
    timestamp: str | None = None
    duration: int | None = None
    status: int | None = None
    traceId: str | None = None
    server: str | None = None
    error: OcpErrorBody | None = None
