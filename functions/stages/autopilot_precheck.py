"""Autopilot precheck (``stage.requested`` kind=autopilot, stage=precheck): start the cluster pre-check task."""

from __future__ import annotations

from typing import Any

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._huawei import ClusterPrecheck
from shared.bus.base import Emitted
from shared.engine.stage import Job, Since, recent, run_stage
from shared.runtime.function import Context, upshift_function

__all__ = ["CALL", "autopilot_precheck"]


class AutopilotPrecheck(ClusterPrecheck):
    """Unlike CCE, a lost answer can be found again: the open upgrade workflow names the
    pre-check task started after it (``pointStatuses[PreCheck].taskID``)."""

    kind = "autopilot"

    async def find_existing(self, client: Any, target: Any, req: StageRequested, since: Since) -> Job | None:
        for workflow in await client.list_workflows(target.cluster_id):
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
