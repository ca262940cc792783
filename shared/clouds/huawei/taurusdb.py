"""TaurusDB StarRocks client: start a kernel upgrade, follow its job, read the instance's version.

Ids (vendor-facts §4.1): a StarRocks instance (suffix ``in17``) belongs to a TaurusDB instance
(suffix ``in07``). The db-upgrade path takes the StarRocks id per its page (seed 000) and PySDK
(TF-HW sends the TaurusDB id: the caller chooses, see ``shared.domain.options.starrocks``); the
instance query takes the TaurusDB id, then the StarRocks id. Errors are ``{error_code,
error_msg}`` with the request id in ``X-Request-Id``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel

from shared.clouds.errors import PermanentCloudError
from shared.clouds.huawei._client import HuaweiClient
from shared.clouds.huawei.models.taurusdb import (
    ImmediateJob,
    ImmediateJobs,
    ScheduledJob,
    ScheduledJobs,
    StarRocksInstance,
    StarRocksInstances,
    TaurusJob,
    TaurusJobAnswer,
    UpgradeStarRocksAnswer,
    UpgradeStarRocksRequest,
)
from shared.clouds.urls import quote_segment as q

__all__ = [
    "FRESH_JOB_GRACE",
    "JOB_PAGE",
    "JOB_PAGES",
    "TaurusDbClient",
]

M = TypeVar("M", bound=BaseModel)

#: A job id the API just returned may 404 for a few seconds while the job is registered.
FRESH_JOB_GRACE = 10.0
#: ``limit`` must be 10, 20 or 50 (vendor-facts §4.5); pages read at most when listing jobs.
JOB_PAGE, JOB_PAGES = 50, 10


class TaurusDbClient(HuaweiClient):
    service = "taurusdb"

    def _headers(self) -> dict[str, str]:
        return {"X-Language": self.config.language}

    async def upgrade_starrocks(
        self, instance_id: str, *, delay: bool | str = False, skip_validate: bool | str = False
    ) -> str:
        """Start the kernel upgrade of ``instance_id`` (the id the db-upgrade path takes: the
        StarRocks id, ``in17``, per the page); returns the job id. ``delay`` / ``skip_validate``
        go out as the Strings "true"/"false" (see ``UpgradeStarRocksRequest``). Not retried once it
        may have reached the vendor: the caller reconciles (``get_starrocks_instance`` / the job
        list) instead."""
        body = UpgradeStarRocksRequest.model_validate({"delay": delay, "is_skip_validate": skip_validate})
        response = await self._call(
            "POST",
            f"/v3/{q(self.project_id)}/instances/{q(instance_id)}/starrocks/db-upgrade",
            endpoint_key="upgrade",
            json=body.model_dump(),
            headers=self._headers(),
            idempotent=False,
        )
        return self._parse_response(UpgradeStarRocksAnswer, response).job_id

    async def get_job(
        self,
        job_id: str,
        *,
        grace: float = FRESH_JOB_GRACE,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> TaurusJob:
        """The job; a 404 is retried for ``grace`` seconds (a fresh job is not visible at once)."""
        deadline = clock() + grace
        delay = 0.5
        while True:
            try:
                response = await self._call(
                    "GET",
                    f"/v3/{q(self.project_id)}/jobs",
                    endpoint_key="jobs",
                    params={"id": job_id},
                    headers=self._headers(),
                )
                return self._parse_response(TaurusJobAnswer, response).job
            except PermanentCloudError as exc:
                if exc.status != 404 or clock() + delay > deadline:
                    raise
            await sleep(delay)
            delay = min(delay * 2, 4.0)

    async def get_starrocks_instance(self, instance_id: str, starrocks_instance_id: str) -> StarRocksInstance:
        """``GET /v3/{p}/instances/{instance_id}/starrocks/{starrocks_instance_id}``
        (ListStarrocksInstanceInfo): the TaurusDB id (in07), then the StarRocks id (in17). Its
        ``data_store_version`` is what a reconciliation compares with the target version, its
        ``actions[].job_id`` the job running on it."""
        response = await self._call(
            "GET",
            f"/v3/{q(self.project_id)}/instances/{q(instance_id)}/starrocks/{q(starrocks_instance_id)}",
            endpoint_key="instances",
            headers=self._headers(),
        )
        answer = self._parse_response(StarRocksInstances, response)
        for instance in answer.instances:
            if instance.id == starrocks_instance_id:
                return instance
        if len(answer.instances) == 1:
            return answer.instances[0]
        raise PermanentCloudError(
            f"StarRocks instance {starrocks_instance_id} not in the answer",
            vendor=self.vendor,
            code="client.not_found",
            request_id=response.request_id,
            status=response.status,
        )

    async def list_immediate_jobs(self, *, status: str | None = None) -> list[ImmediateJob]:
        """``GET /v3/{p}/immediate-jobs``: the project's recent jobs, newest first as listed, every
        page up to ``JOB_PAGES``. There is no instance filter: the caller filters."""
        params = {} if status is None else {"status": status}
        pages = await self._pages("immediate-jobs", "jobs_list", params, ImmediateJobs)
        return [job for page in pages for job in page.jobs]

    async def list_scheduled_jobs(self, instance_id: str) -> list[ScheduledJob]:
        """``GET /v3/{p}/scheduled-jobs?instance_id=``: delayed jobs of one instance (this list
        takes an instance filter; vendor-facts §4.5), every page up to ``JOB_PAGES``."""
        pages = await self._pages(
            "scheduled-jobs", "scheduled_jobs", {"instance_id": instance_id}, ScheduledJobs
        )
        return [job for page in pages for job in page.schedules]

    async def _pages(self, path: str, key: str, params: dict[str, str], model: type[M]) -> list[M]:
        """Every page of a job list (``offset`` a 1-based page, ``limit`` 10|20|50)."""
        out: list[M] = []
        seen = 0
        for page in range(1, JOB_PAGES + 1):
            response = await self._call(
                "GET",
                f"/v3/{q(self.project_id)}/{path}",
                endpoint_key=key,
                params={**params, "offset": str(page), "limit": str(JOB_PAGE)},
                headers=self._headers(),
            )
            answer = self._parse_response(model, response)
            out.append(answer)
            got = len(getattr(answer, "jobs", None) or getattr(answer, "schedules", None) or [])
            seen += got
            if got < JOB_PAGE or seen >= getattr(answer, "total_count", 0):
                break
        return out
