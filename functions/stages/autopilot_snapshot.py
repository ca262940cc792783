"""Autopilot snapshot (``stage.requested`` kind=autopilot, stage=snapshot): back the cluster's
masters up before the upgrade (``POST /autopilot/v3.1/.../operation/snapshot``).

Followed as Huawei documents it (vendor-facts §2.6, §3.4): the create answers the task id as the
*top-level* ``uid``; ``GET .../snapshot/tasks`` lists every snapshot task, and ours is the item
whose ``metadata.uid`` is that id, its ``status.phase`` Success (done), Failed, or anything else
(still running) — the phase values are not enumerated anywhere, so this is Terraform's reading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.catalog import JobPoll, StageRequested
from events.envelope import Event
from functions.stages._huawei import cluster_id
from shared.bus.base import Emitted
from shared.clouds.huawei.autopilot import AutopilotClient
from shared.domain.fleet import Target
from shared.engine.contract import Job, JobStatus, VendorCall
from shared.engine.stage import run_stage
from shared.engine.vendor_clock import Since, recent
from shared.runtime.function import Context, upshift_function

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients

__all__ = ["CALL", "autopilot_snapshot"]


class AutopilotSnapshot(VendorCall[AutopilotClient]):
    """Claimed (each call takes another snapshot); a lost answer is found in the snapshot task
    list: the newest task whose ``metadata.creationTimestamp`` is since the claim."""

    kind = "autopilot"
    stage = "snapshot"

    def client(self, clouds: CloudClients) -> AutopilotClient:
        return clouds.autopilot

    async def start(self, client: AutopilotClient, target: Target, req: StageRequested) -> Job:
        return Job(await client.snapshot(cluster_id(target)))

    async def find_existing(
        self, client: AutopilotClient, target: Target, req: StageRequested, since: Since
    ) -> Job | None:
        tasks = [
            t
            for t in await client.list_snapshot_tasks(cluster_id(target))
            if t.uid and recent(t.metadata.creationTimestamp, since)
        ]
        tasks.sort(key=lambda t: t.metadata.creationTimestamp or "")
        return Job(tasks[-1].uid) if tasks else None

    async def status(self, client: AutopilotClient, target: Target, poll: JobPoll) -> JobStatus:
        task = await client.get_snapshot_task(cluster_id(target), poll.job_id)
        phase = task.status.phase
        if phase == "Success":
            return JobStatus("succeeded", phase)
        if phase == "Failed":
            return JobStatus("failed", phase, task.message or "snapshot failed", "snapshot.failed")
        return JobStatus("running", f"{phase}:{task.status.progress or ''}")


CALL = AutopilotSnapshot()


@upshift_function
async def autopilot_snapshot(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """At most one snapshot call per (target, version) → ``stage.started`` + ``job.poll``."""
    return await run_stage(CALL, event, ctx)
