"""OceanBase upgrade (``stage.requested`` kind=oceanbase, stage=upgrade): OCP cluster upgrade,
followed as a task DAG."""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.catalog import JobPoll, StageRequested
from events.envelope import Event
from shared.bus.base import Emitted
from shared.clouds.errors import CloudError
from shared.clouds.oceanbase.client import OceanBaseClient, OceanBaseRefused
from shared.clouds.oceanbase.models import TaskInstance
from shared.domain.fleet import Target
from shared.domain.options import OceanBaseOptions, target_options
from shared.domain.versions import reached
from shared.engine.contract import ALREADY_DONE, Done, Job, JobStatus, VendorCall, required
from shared.engine.stage import run_stage
from shared.engine.vendor_clock import Since, recent
from shared.runtime.function import Context, upshift_function

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients

__all__ = ["CALL", "oceanbase_upgrade"]


def _cluster_id(target: Target) -> str:
    return required(target, "cluster_id", target.cluster_id)


class OceanBaseUpgrade(VendorCall[OceanBaseClient]):
    """``POST /api/v2/ob/clusters/{id}/upgrade`` with the body the target's options choose
    (``targets[].oceanbase.body``): the new ``{upgradeMode, destVersion, operatingSystem, …}``,
    the legacy ``{rpmFileName}``, or ``auto`` — new, and legacy when OCP refuses the new one as
    an OCP that only knows ``rpmFileName`` would (a refusal started nothing: see
    ``shared.domain.options.oceanbase.LegacyFallback``).

    Reconciled from the cluster's upgrade tasks (``Submit upgrade OB cluster dag``, newest first,
    every page: OCP runs one upgrade at a time, so a RUNNING one is ours; a FAILED one started
    since the claim is ours) and the cluster's ``obVersion``; never from the cluster's status,
    which has no upgrading value (vendor-facts §5.3)."""

    kind = "oceanbase"
    stage = "upgrade"

    def client(self, clouds: CloudClients) -> OceanBaseClient:
        return clouds.oceanbase

    @staticmethod
    def _options(target: Target) -> OceanBaseOptions:
        return target_options(target, "oceanbase")

    async def start(self, client: OceanBaseClient, target: Target, req: StageRequested) -> Job:
        options = self._options(target)
        if options.body == "legacy":
            task = await client.upgrade(_cluster_id(target), options.legacy_body(target, req.to_version))
            return Job(str(task.id))
        try:
            task = await client.upgrade(_cluster_id(target), options.new_body(target, req.to_version))
        except OceanBaseRefused as exc:
            if options.body != "auto" or not options.fallback.matches(exc.status, exc.error_text):
                raise
            task = await client.upgrade(_cluster_id(target), options.legacy_body(target, req.to_version))
        return Job(str(task.id))

    async def find_existing(
        self, client: OceanBaseClient, target: Target, req: StageRequested, since: Since
    ) -> Job | Done | None:
        tasks = await client.list_tasks(_cluster_id(target))  # the upgrade task, newest first
        running = next((t for t in tasks if t.status == "RUNNING"), None)
        if running is not None:
            return Job(str(running.id))
        cluster = await client.get_cluster(_cluster_id(target))
        if reached(self.kind, cluster.obVersion, req.to_version):
            return ALREADY_DONE
        failed = next((t for t in tasks if t.status == "FAILED" and recent(t.startTime, since)), None)
        return Job(str(failed.id)) if failed is not None else None

    async def status(self, client: OceanBaseClient, target: Target, poll: JobPoll) -> JobStatus:
        task = await client.get_task(poll.job_id)
        done = sum(1 for s in task.subtasks if s.status == "SUCCESSFUL")
        if task.status == "SUCCESSFUL":
            return JobStatus("succeeded", f"{done}/{len(task.subtasks)}")
        if task.status == "FAILED":
            return JobStatus("failed", "FAILED", await self._reason(client, task), "task.failed")
        running = ",".join(str(s.id) for s in task.subtasks if s.status == "RUNNING")
        return JobStatus("running", f"{done}/{len(task.subtasks)}:{running}")

    @staticmethod
    async def _reason(client: OceanBaseClient, task: TaskInstance) -> str:
        """Why a FAILED task failed: the failed subtask's log (the documented source; one more
        read, on this terminal path only), else the failed subtasks' names."""
        failed = task.failed_subtasks
        names = ", ".join(s.name for s in failed)
        reason = task.errorMessage or (f"failed subtask(s): {names}" if names else "task failed")
        if failed and not task.errorMessage:
            try:
                log = (await client.subtask_log(task.id, failed[0].id)).strip()
            except CloudError:
                log = ""  # the reason is a courtesy: the failure stands without it
            if log:
                reason = f"{failed[0].name}: {log.splitlines()[-1][:500]}"
        return reason


CALL = OceanBaseUpgrade()


@upshift_function
async def oceanbase_upgrade(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """At most one ``POST /api/v2/ob/clusters/{id}/upgrade`` per (target, version) → ``stage.started``
    (a second only after OCP refused the first's body, with the legacy body)."""
    return await run_stage(CALL, event, ctx)
