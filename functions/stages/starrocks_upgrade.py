"""StarRocks upgrade (``stage.requested`` kind=starrocks, stage=upgrade): TaurusDB kernel upgrade."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from events.catalog import JobPoll, StageRequested
from events.envelope import Event
from shared.bus.base import Emitted
from shared.clouds.errors import ValidationFailed
from shared.clouds.huawei.models.taurusdb import StarRocksInstance
from shared.clouds.huawei.taurusdb import TaurusDbClient
from shared.domain.fleet import Target
from shared.domain.options import StarRocksOptions, target_options
from shared.domain.versions import reached
from shared.engine.contract import ALREADY_DONE, Done, Job, JobStatus, VendorCall, required
from shared.engine.stage import run_stage
from shared.engine.vendor_clock import Since, recent
from shared.runtime.function import Context, upshift_function

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients

__all__ = ["CALL", "starrocks_upgrade"]


class StarRocksUpgrade(VendorCall[TaurusDbClient]):
    """The API takes no version (the vendor upgrades to its newest kernel); the stage succeeds
    when the job completes. A lost answer is found again from the vendor's own records, never
    guessed from the instance's state (a job that failed leaves the instance back at "normal"
    at the old version — calling again then would be a second upgrade): the instance's running
    ``actions[].job_id``, then the project's ``immediate-jobs`` for this instance since the claim
    (whatever their status: a failed one is ours and fails the stage), then the version.

    Ids (``shared.domain.options.starrocks``): the db-upgrade path takes the StarRocks id (in17) unless
    ``starrocks.upgrade_path_id`` says ``taurusdb`` (in07); the instance query takes the TaurusDB
    id, then the StarRocks id. ``delay`` and ``is_skip_validate`` come from the target's options.

    Job statuses (ShowGaussMySqlJobInfo): Completed succeeds; Failed and Canceled fail;
    Pending, Running and **Unauthorized** wait. Unauthorized means the job waits for someone to
    authorise it: it is reported as the progress ``Unauthorized: waiting for authorisation …``,
    which does not change, so the stuck detector fails the stage after ``STUCK_AFTER`` expected
    durations with that text as the last progress — a person is told, nothing waits silently."""

    kind = "starrocks"
    stage = "upgrade"

    def client(self, clouds: CloudClients) -> TaurusDbClient:
        return clouds.taurusdb

    @staticmethod
    def _options(target: Target) -> StarRocksOptions:
        return target_options(target, "starrocks")

    @staticmethod
    def _instance(client: TaurusDbClient, target: Target) -> Awaitable[StarRocksInstance]:
        if not target.starrocks_instance_id:  # a refusal, not a crash, when reconciling
            raise ValidationFailed(
                "the instance query needs the StarRocks id (in17)",
                vendor="taurusdb",
                field="starrocks_instance_id",
            )
        return client.get_starrocks_instance(
            required(target, "instance_id", target.instance_id), target.starrocks_instance_id
        )

    async def start(self, client: TaurusDbClient, target: Target, req: StageRequested) -> Job:
        options = self._options(target)
        job_id = await client.upgrade_starrocks(
            options.upgrade_id(target), delay=options.delay, skip_validate=options.is_skip_validate
        )
        return Job(job_id)

    async def find_existing(
        self, client: TaurusDbClient, target: Target, req: StageRequested, since: Since
    ) -> Job | Done | None:
        instance = await self._instance(client, target)
        for action in instance.actions:
            if action.job_id and action.status != "DELETED":
                return Job(action.job_id)
        ours = {target.instance_id, target.starrocks_instance_id}
        if self._options(target).delay:  # a delayed upgrade waits in scheduled-jobs until it runs
            for scheduled in await client.list_scheduled_jobs(self._options(target).upgrade_id(target)):
                if scheduled.instance_id in ours and recent(scheduled.create_time, since):
                    return Job(scheduled.job_id)
        jobs = [
            j
            for j in await client.list_immediate_jobs()
            # The StarRocks upgrade's job_name is unconfirmed (vendor-facts §4.5): any upgrade job
            # of this instance since the claim is taken as ours.
            if j.instance_id in ours and "upgrade" in j.job_name.lower() and recent(j.created_time, since)
        ]
        if jobs:
            newest = max(jobs, key=lambda j: j.created_time or "")
            return Job(newest.job_id)
        if reached(self.kind, instance.version, req.to_version):
            return ALREADY_DONE
        return None

    async def status(self, client: TaurusDbClient, target: Target, poll: JobPoll) -> JobStatus:
        job = await client.get_job(poll.job_id)
        if job.status == "Completed":
            return JobStatus("succeeded", "Completed")
        if job.terminal:  # Failed or Canceled
            return JobStatus(
                "failed", job.status, job.fail_reason or f"job {job.status}", f"job.{job.status.lower()}"
            )
        if job.status == "Unauthorized":
            # Not followed silently: the progress says who must act, and stays the same until
            # someone does (then the stuck detector reports it with this text).
            return JobStatus(
                "running", f"Unauthorized: waiting for authorisation of job {job.id} in the console"
            )
        return JobStatus("running", f"{job.status}:{job.process or ''}")


CALL = StarRocksUpgrade()


@upshift_function
async def starrocks_upgrade(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """At most one ``POST .../starrocks/db-upgrade`` per (target, version) → ``stage.started``."""
    return await run_stage(CALL, event, ctx)
