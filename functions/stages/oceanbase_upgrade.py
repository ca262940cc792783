"""OceanBase upgrade (``stage.requested`` kind=oceanbase, stage=upgrade): OCP cluster upgrade,
followed as a task DAG."""

from __future__ import annotations

from typing import Any

from events.catalog import JobPoll, StageRequested
from events.envelope import Event
from functions.stages._common import (
    ALREADY_DONE,
    Done,
    Job,
    JobStatus,
    Since,
    VendorCall,
    reached,
    recent,
    run_stage,
)
from shared.bus.base import Emitted
from shared.function import Context, upshift_function

__all__ = ["CALL", "oceanbase_upgrade"]


class OceanBaseUpgrade(VendorCall):
    """A ROLLING upgrade to ``destVersion`` (the target's ``operating_system`` is required by OCP).
    Reconciled from the cluster's task list (OCP runs one upgrade at a time: a RUNNING task is
    ours; a FAILED one started since the claim is ours) and the cluster's ``obVersion``."""

    kind = "oceanbase"
    stage = "upgrade"

    def client(self, clouds: Any) -> Any:
        return clouds.ocp

    async def start(self, client: Any, target: Any, req: StageRequested) -> Job:
        body = {"destVersion": req.to_version, "operatingSystem": target.operating_system or ""}
        task = await client.upgrade(target.cluster_id, body)
        return Job(str(task.id))

    async def find_existing(
        self, client: Any, target: Any, req: StageRequested, since: Since
    ) -> Job | Done | None:
        tasks = await client.list_tasks(target.cluster_id)  # newest first
        running = next((t for t in tasks if t.status == "RUNNING"), None)
        if running is not None:
            return Job(str(running.id))
        cluster = await client.get_cluster(target.cluster_id)
        if reached(self.kind, cluster.obVersion, req.to_version):
            return ALREADY_DONE
        failed = next((t for t in tasks if t.status == "FAILED" and recent(t.startTime, since)), None)
        return Job(str(failed.id)) if failed is not None else None

    async def status(self, client: Any, target: Any, poll: JobPoll) -> JobStatus:
        task = await client.get_task(poll.job_id)
        done = sum(1 for s in task.subtasks if s.status == "SUCCESSFUL")
        if task.status == "SUCCESSFUL":
            return JobStatus("succeeded", f"{done}/{len(task.subtasks)}")
        if task.status == "FAILED":
            failed = ", ".join(s.name for s in task.failed_subtasks)
            reason = task.errorMessage or (f"failed subtask(s): {failed}" if failed else "task failed")
            return JobStatus("failed", "FAILED", reason, "task.failed")
        running = ",".join(str(s.id) for s in task.subtasks if s.status == "RUNNING")
        return JobStatus("running", f"{done}/{len(task.subtasks)}:{running}")


CALL = OceanBaseUpgrade()


@upshift_function
async def oceanbase_upgrade(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """At most one ``POST /api/v2/ob/clusters/{id}/upgrade`` per (target, version) → ``stage.started``."""
    return await run_stage(CALL, event, ctx)
