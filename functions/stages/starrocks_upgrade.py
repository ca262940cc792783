"""StarRocks upgrade (``stage.requested`` kind=starrocks, stage=upgrade): TaurusDB kernel upgrade."""

from __future__ import annotations

from typing import Any

from events.catalog import JobPoll, StageRequested
from events.envelope import Event
from functions.stages._common import ALREADY_DONE, Done, Job, JobStatus, Since, VendorCall, reached, run_stage
from shared.bus.base import Emitted
from shared.function import Context, upshift_function

__all__ = ["CALL", "INSTANCE_JOB", "starrocks_upgrade"]

#: Job id prefix of an upgrade adopted from the instance's state: TaurusDB lists no jobs per
#: instance, so a lost answer leaves no job id, only an instance that is "upgrading".
INSTANCE_JOB = "instance:"


class StarRocksUpgrade(VendorCall):
    """The API takes no version (the vendor upgrades to its newest kernel); the stage succeeds
    when the job completes. Reconciled from the instance: at the version → done; upgrading →
    followed through the instance; otherwise the vendor shows nothing started."""

    kind = "starrocks"
    stage = "upgrade"

    def client(self, clouds: Any) -> Any:
        return clouds.taurusdb

    @staticmethod
    def _instance(client: Any, target: Any) -> Any:
        return client.get_starrocks_instance(
            target.instance_id, target.starrocks_instance_id or target.instance_id
        )

    async def start(self, client: Any, target: Any, req: StageRequested) -> Job:
        return Job(await client.upgrade_starrocks(target.instance_id))

    async def find_existing(
        self, client: Any, target: Any, req: StageRequested, since: Since
    ) -> Job | Done | None:
        instance = await self._instance(client, target)
        if reached(self.kind, instance.version, req.to_version):
            return ALREADY_DONE
        if instance.status.lower() == "upgrading":
            return Job(INSTANCE_JOB + instance.id)
        return None

    async def status(self, client: Any, target: Any, poll: JobPoll) -> JobStatus:
        if poll.job_id.startswith(INSTANCE_JOB):
            instance = await self._instance(client, target)
            if instance.status.lower() == "upgrading":
                return JobStatus("running", f"upgrading:{instance.version}")
            if reached(self.kind, instance.version, poll.to_version):
                return JobStatus("succeeded", instance.version)
            return JobStatus(
                "failed", instance.status, f"instance is {instance.status} at {instance.version}"
            )
        job = await client.get_job(poll.job_id)
        if job.status == "Completed":
            return JobStatus("succeeded", "Completed")
        if job.terminal:
            return JobStatus("failed", job.status, job.fail_reason or f"job {job.status}", "job.failed")
        return JobStatus("running", f"{job.status}:{job.process or ''}")


CALL = StarRocksUpgrade()


@upshift_function
async def starrocks_upgrade(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """At most one ``POST .../starrocks/db-upgrade`` per (target, version) → ``stage.started``."""
    return await run_stage(CALL, event, ctx)
