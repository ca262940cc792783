"""Autopilot precheck (``stage.requested`` kind=autopilot, stage=precheck): start the cluster pre-check task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._huawei import ClusterPrecheck, cluster_id
from shared.bus.base import Emitted
from shared.clouds.huawei.autopilot import AutopilotClient
from shared.domain.fleet import Target
from shared.engine.contract import Job
from shared.engine.stage import run_stage
from shared.engine.vendor_clock import Since, recent
from shared.runtime.function import Context, upshift_function

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients

__all__ = ["CALL", "autopilot_precheck"]


class AutopilotPrecheck(ClusterPrecheck[AutopilotClient]):
    """Unlike CCE, a lost answer can be found again: the open upgrade workflow names the
    pre-check task started after it (``pointStatuses[PreCheck].taskID``)."""

    kind = "autopilot"

    def client(self, clouds: CloudClients) -> AutopilotClient:
        return clouds.autopilot

    async def find_existing(
        self, client: AutopilotClient, target: Target, req: StageRequested, since: Since
    ) -> Job | None:
        for workflow in await client.list_workflows(cluster_id(target)):
            if workflow.status.phase in ("Success", "Cancel"):
                continue
            point = workflow.status.point("PreCheck")
            if point is not None and point.taskID and recent(point.startTimeStamp, since):
                return Job(point.taskID)
        return None


CALL = AutopilotPrecheck()


@upshift_function
async def autopilot_precheck(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """One ``POST .../operation/precheck`` → ``stage.started`` + ``job.poll``, or ``stage.failed``."""
    return await run_stage(CALL, event, ctx)
