"""TaurusDB (StarRocks) request and response bodies (seed 000 and the job / instance queries)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

__all__ = [
    "JOB_STATUSES",
    "TERMINAL_JOB_STATUSES",
    "ImmediateJob",
    "ImmediateJobs",
    "InstanceAction",
    "JobInstance",
    "ScheduledJob",
    "ScheduledJobs",
    "StarRocksInstance",
    "StarRocksInstances",
    "TaurusJob",
    "TaurusJobAnswer",
    "UpgradeStarRocksAnswer",
    "UpgradeStarRocksRequest",
]

#: ShowGaussMySqlJobInfo (api-taurusdb/ShowGaussMySqlJobInfo.html, 2026-02-10): Pending (delayed),
#: Running, Completed, Failed, Unauthorized (waiting for authorisation), Canceled. The PySDK enum
#: lists only the first four. Unauthorized is not terminal: it waits for a person.
JOB_STATUSES = ("Pending", "Running", "Completed", "Failed", "Unauthorized", "Canceled")
TERMINAL_JOB_STATUSES = frozenset({"Completed", "Failed", "Canceled"})


def _flag(value: object) -> object:
    # The docs type these as "true"/"false" strings, the Python SDK as booleans: take both.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


class UpgradeStarRocksRequest(BaseModel):
    """``POST /v3/{project_id}/instances/{instance_id}/starrocks/db-upgrade`` (seed 000).

    ``delay`` and ``is_skip_validate`` are sent as the Strings ``"true"`` / ``"false"``: the
    page's parameter table types them String (range true/false, default false), its SDK samples
    send ``"false"``, and TF-HW sends strings; PySDK ``upgrade_sr_kernel_version_request_v3.py``
    types them bool and the page's example body shows JSON booleans (vendor-facts §4.2). The
    table is the contract, so strings; either spelling is accepted as input."""

    model_config = ConfigDict(extra="forbid")

    delay: bool = False
    is_skip_validate: bool = False

    _coerce = field_validator("delay", "is_skip_validate", mode="before")(staticmethod(_flag))

    @field_serializer("delay", "is_skip_validate")
    def _as_string(self, value: bool) -> str:
        return "true" if value else "false"


class UpgradeStarRocksAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")
    job_id: str = Field(min_length=1)


class JobInstance(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = ""
    name: str = ""


class TaurusJob(BaseModel):
    """``GET /v3/{project_id}/jobs?id=`` -> ``job``. ``process`` is a percentage while running."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str = ""
    status: str
    created: str | None = None
    ended: str | None = None
    process: str | None = None
    instance: JobInstance | None = None
    fail_reason: str | None = None

    @field_validator("process", mode="before")
    @classmethod
    def _process(cls, value: object) -> str | None:
        return None if value is None else str(value)

    @property
    def progress(self) -> float | None:
        """``process`` as a number 0..100 (``"45%"`` -> 45.0); 100 once Completed."""
        if self.status == "Completed":
            return 100.0
        match = re.search(r"\d+(\.\d+)?", self.process or "")
        return float(match.group()) if match else None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES


class TaurusJobAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")
    job: TaurusJob


class InstanceAction(BaseModel):
    """An operation running on an instance: ``{id, action, object_id, type, job_id, status:
    OK_TO_RUN|DELETED, created_at, updated_at}`` (ListStarrocksInstanceInfo, vendor-facts §4.3)."""

    model_config = ConfigDict(extra="allow")

    id: str = ""
    action: str = ""
    job_id: str | None = None
    status: str = ""
    created_at: str | None = None


class StarRocksInstance(BaseModel):
    """One entry of ``GET /v3/{p}/instances/{instance_id}/starrocks/{starrocks_instance_id}``."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str = ""
    status: str = ""
    data_store_version: str = ""
    data_store_type: str = ""
    new_version_available: bool | None = None
    actions: list[InstanceAction] = Field(default_factory=list)

    @property
    def version(self) -> str:
        return self.data_store_version


class ImmediateJob(BaseModel):
    """One entry of ``GET /v3/{p}/immediate-jobs`` (PySDK ``gaussdb_client.py``, vendor-facts §4.5)."""

    model_config = ConfigDict(extra="allow")

    instance_id: str = ""
    job_id: str
    job_name: str = ""
    status: str = ""
    process: str | None = None
    created_time: str | None = None
    ended_time: str | None = None
    fail_reason: str | None = None

    @field_validator("process", mode="before")
    @classmethod
    def _process(cls, value: object) -> str | None:
        return None if value is None else str(value)


class ImmediateJobs(BaseModel):
    model_config = ConfigDict(extra="allow")
    jobs: list[ImmediateJob] = Field(default_factory=list)
    total_count: int = 0


class ScheduledJob(BaseModel):
    """One entry of ``GET /v3/{p}/scheduled-jobs`` (PySDK ``gaussdb_client.py``; vendor-facts §4.5):
    a delayed job waiting for its window."""

    model_config = ConfigDict(extra="allow")

    job_id: str
    job_status: str = ""
    instance_id: str = ""
    job_name: str = ""
    create_time: str | None = None


class ScheduledJobs(BaseModel):
    model_config = ConfigDict(extra="allow")
    schedules: list[ScheduledJob] = Field(default_factory=list)
    total_count: int = 0


class StarRocksInstances(BaseModel):
    model_config = ConfigDict(extra="allow")
    instances: list[StarRocksInstance] = Field(default_factory=list)
